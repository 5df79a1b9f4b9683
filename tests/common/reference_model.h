// What the whole-model float64 references (llama, GPT-2) share: the metadata every family names
// the same way, and the model's weights as doubles.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <semline/model.h>

namespace semline::testing {

// The metadata value of `key`; throws naming it when the model has none.
const MetaValue& need_meta(const ModelView& m, const std::string& key);

// arch, n_embd, n_ff, n_layer, n_head (n_head_kv the same), head_dim = n_embd / n_head, n_ctx_train
// (0 when absent) and n_vocab, read from `arch`.* keys and the vocabulary (independent of the archs
// plugin).
HParams read_common_hparams(const ModelView& m, const std::string& arch);

// A model's weights as doubles, row-major [rows][ne0], each dequantised once on first use.
class WeightCache {
 public:
  explicit WeightCache(const ModelView& m) : m_(m) {}
  const std::vector<double>& operator()(const std::string& name);

 private:
  const ModelView& m_;
  std::map<std::string, std::vector<double>> cache_;
};

}  // namespace semline::testing
