// Reads hyper-parameters from GGUF metadata with errors that name the key and the file.
#pragma once

#include <optional>
#include <vector>
#include <string>
#include <string_view>

#include <semline/model.h>

namespace semline::archs {

// Every key it reads must be among the template's metadata_keys (`known`): the list the loader
// checks a model's keys against and the keys honoured here are one list.
class HParamsReader {
 public:
  HParamsReader(const ModelView& model, std::string arch, const std::vector<std::string>& known)
      : model_(model), arch_(std::move(arch)), known_(known) {}

  // "{arch}.key" as an integer / a number; required ones throw when absent or of the wrong type.
  int64_t integer(std::string_view key) const;
  std::optional<int64_t> find_integer(std::string_view key) const;
  double number(std::string_view key) const;
  std::optional<double> find_number(std::string_view key) const;
  std::optional<std::string_view> find_string(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;
  // Length of an array-valued key without the arch prefix (e.g. tokenizer.ggml.tokens).
  std::optional<uint64_t> find_array_length(std::string_view full_key) const;

  std::string full(std::string_view key) const;

  // What every family names alike: arch, n_embd, n_ff, n_layer, n_head (n_head_kv the same), and
  // n_vocab from {arch}.vocab_size, else the vocabulary's length (0: neither).
  HParams common() const;

  // The decoder of the llama lineage (llama, qwen2, starcoder2, ...): common() and head_count_kv,
  // context_length, the norm epsilon (key `eps_key`), the head size (attention.key_length =
  // value_length, else n_embd / n_head), RoPE's base, rotated dimensions and linear scaling; checked.
  HParams rope_decoder(RopeType rope, std::string_view eps_key = "attention.layer_norm_rms_epsilon") const;

 private:
  const MetaValue& require(std::string_view key) const;
  const MetaValue* find(std::string_view key) const { return model_.meta(full(key)); }
  const ModelView& model_;
  std::string arch_;
  const std::vector<std::string>& known_;
};

// The keys rope_decoder reads, for a template's metadata_keys.
std::vector<std::string> rope_decoder_keys(std::string_view eps_key = "attention.layer_norm_rms_epsilon");

}  // namespace semline::archs
