// Reads hyper-parameters from GGUF metadata with errors that name the key and the file.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <semline/model.h>

namespace semline::archs {

class HParamsReader {
 public:
  HParamsReader(const ModelView& model, std::string arch) : model_(model), arch_(std::move(arch)) {}

  // "{arch}.key" as an integer / a number; required ones throw when absent or of the wrong type.
  int64_t integer(std::string_view key) const;
  std::optional<int64_t> find_integer(std::string_view key) const;
  double number(std::string_view key) const;
  std::optional<double> find_number(std::string_view key) const;
  std::optional<std::string_view> find_string(std::string_view key) const;
  // Length of an array-valued key without the arch prefix (e.g. tokenizer.ggml.tokens).
  std::optional<uint64_t> find_array_length(std::string_view full_key) const;

  std::string full(std::string_view key) const { return arch_ + "." + std::string(key); }

  // What every family names alike: arch, n_embd, n_ff, n_layer, n_head (n_head_kv the same), and
  // n_vocab from {arch}.vocab_size, else the vocabulary's length (0: neither).
  HParams common() const;

 private:
  const MetaValue& require(std::string_view key) const;
  const ModelView& model_;
  std::string arch_;
};

}  // namespace semline::archs
