#include "common/reference_model.h"

#include <stdexcept>

#include <semline/codec.h>

namespace semline::testing {

const MetaValue& need_meta(const ModelView& m, const std::string& key) {
  const MetaValue* v = m.meta(key);
  if (!v) throw std::runtime_error("reference: missing " + key);
  return *v;
}

HParams read_common_hparams(const ModelView& m, const std::string& arch) {
  auto count = [&](const std::string& key) { return static_cast<int64_t>(need_meta(m, arch + "." + key).u); };
  HParams hp;
  hp.arch = arch;
  hp.n_embd = count("embedding_length");
  hp.n_ff = count("feed_forward_length");
  hp.n_layer = count("block_count");
  hp.n_head = count("attention.head_count");
  hp.n_head_kv = hp.n_head;
  hp.head_dim = hp.n_embd / hp.n_head;
  const MetaValue* ctx = m.meta(arch + ".context_length");
  hp.n_ctx_train = ctx ? static_cast<int64_t>(ctx->u) : 0;
  hp.n_vocab = static_cast<int64_t>(need_meta(m, "tokenizer.ggml.tokens").count);
  return hp;
}

const std::vector<double>& WeightCache::operator()(const std::string& name) {
  auto it = cache_.find(name);
  if (it != cache_.end()) return it->second;
  const Tensor* t = m_.weight(name);
  if (!t) throw std::runtime_error("reference: missing tensor " + name);
  std::vector<float> row(t->ne[0]);
  std::vector<double> out;
  out.reserve(static_cast<size_t>(t->elements()));
  for (int64_t r = 0; r < t->rows(); ++r) {
    dequantize_row(t->dtype, static_cast<const char*>(t->host) + r * t->row_bytes(), row.data(), t->ne[0]);
    out.insert(out.end(), row.begin(), row.end());
  }
  return cache_[name] = std::move(out);
}

}  // namespace semline::testing
