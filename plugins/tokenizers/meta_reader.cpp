#include "meta_reader.h"

#include <semline/error.h>

namespace semline::tokenizers {

namespace {

std::string type_of(const MetaValue& v) {
  if (v.type != MetaType::ARRAY) return meta_type_name(v.type);
  return std::string("array of ") + meta_type_name(v.elem);
}

bool is_int_type(MetaType t) {
  return t <= MetaType::I32 || t == MetaType::U64 || t == MetaType::I64;
}

}  // namespace

void MetaReader::fail(std::string_view key, const std::string& what) const {
  throw Error(model_.path() + ": " + std::string(key) + " " + what);
}

std::optional<std::string_view> MetaReader::find_string(std::string_view key) const {
  const MetaValue* v = model_.meta(key);
  if (!v) return std::nullopt;
  if (v->type != MetaType::STRING) fail(key, "must be a string, found " + type_of(*v));
  return v->str;
}

std::optional<bool> MetaReader::find_bool(std::string_view key) const {
  const MetaValue* v = model_.meta(key);
  if (!v) return std::nullopt;
  if (v->type != MetaType::BOOL) fail(key, "must be a bool, found " + type_of(*v));
  return v->u != 0;
}

const MetaValue& MetaReader::strings(std::string_view key) const {
  const MetaValue* v = model_.meta(key);
  if (!v) fail(key, "is missing: the file carries no vocabulary");
  if (v->type != MetaType::ARRAY || v->elem != MetaType::STRING || v->strings.size() != v->count)
    fail(key, "must be an array of strings, found " + type_of(*v));
  return *v;
}

const MetaValue* MetaReader::find_numbers(std::string_view key, uint64_t count, bool integers) const {
  const MetaValue* v = model_.meta(key);
  if (!v) return nullptr;
  bool ok = v->type == MetaType::ARRAY && meta_type_size(v->elem) > 0 && v->elem != MetaType::BOOL &&
            (!integers || is_int_type(v->elem)) && (v->count == 0 || v->raw);
  if (!ok) fail(key, std::string("must be an array of ") + (integers ? "integers" : "numbers") + ", found " + type_of(*v));
  if (v->count != count)
    fail(key, "has " + std::to_string(v->count) + " entries but tokenizer.ggml.tokens has " + std::to_string(count));
  return v;
}

std::optional<int32_t> MetaReader::find_token_id(std::string_view key, int32_t n_vocab) const {
  const MetaValue* v = model_.meta(key);
  if (!v) return std::nullopt;
  if (!is_int_type(v->type)) fail(key, "must be an integer token id, found " + type_of(*v));
  bool is_signed = v->type == MetaType::I8 || v->type == MetaType::I16 || v->type == MetaType::I32 ||
                  v->type == MetaType::I64;
  if (is_signed ? v->i == -1 : v->u == 0xFFFFFFFFu) return std::nullopt;
  if ((is_signed && v->i < 0) || (is_signed ? static_cast<uint64_t>(v->i) : v->u) >= static_cast<uint64_t>(n_vocab)) {
    std::string value = is_signed ? std::to_string(v->i) : std::to_string(v->u);
    fail(key, "is " + value + ", outside the vocabulary [0, " + std::to_string(n_vocab) + ")");
  }
  return static_cast<int32_t>(is_signed ? v->i : static_cast<int64_t>(v->u));
}

}  // namespace semline::tokenizers
