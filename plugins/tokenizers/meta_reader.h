// Reads tokenizer metadata with errors that name the file and the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <semline/model.h>

namespace semline::tokenizers {

class MetaReader {
 public:
  explicit MetaReader(const ModelView& model) : model_(model) {}

  std::optional<std::string_view> find_string(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;
  // An array of strings; required.
  const MetaValue& strings(std::string_view key) const;
  // An array of numbers (integers when `integers`) holding exactly `count` elements; null when the
  // key is absent.
  const MetaValue* find_numbers(std::string_view key, uint64_t count, bool integers) const;
  // A token id in [0, n_vocab); absent, -1 and 0xFFFFFFFF (how converters write "none") give
  // nullopt.
  std::optional<int32_t> find_token_id(std::string_view key, int32_t n_vocab) const;

  [[noreturn]] void fail(std::string_view key, const std::string& what) const;
  const ModelView& model() const { return model_; }

 private:
  const ModelView& model_;
};

}  // namespace semline::tokenizers
