#include "hparams_reader.h"

#include <semline/error.h>

namespace semline::archs {

const MetaValue& HParamsReader::require(std::string_view key) const {
  const MetaValue* v = model_.meta(full(key));
  if (!v) throw Error(model_.path() + ": metadata key '" + full(key) + "' is missing (needed for arch '" + arch_ + "')");
  return *v;
}

int64_t HParamsReader::integer(std::string_view key) const {
  const MetaValue& v = require(key);
  if (!v.is_int()) throw Error(model_.path() + ": metadata key '" + full(key) + "' has type " +
                               meta_type_name(v.type) + ", expected an integer");
  const bool is_signed = v.type == MetaType::I8 || v.type == MetaType::I16 ||
                         v.type == MetaType::I32 || v.type == MetaType::I64;
  constexpr uint64_t kMax = uint64_t{1} << 40;  // no real hyper-parameter is larger
  if (is_signed ? (v.i < 0 || static_cast<uint64_t>(v.i) > kMax) : v.u > kMax)
    throw Error(model_.path() + ": metadata key '" + full(key) + "' = " +
                (is_signed ? std::to_string(v.i) : std::to_string(v.u)) + " is out of range (0..2^40)");
  return is_signed ? v.i : static_cast<int64_t>(v.u);
}

std::optional<int64_t> HParamsReader::find_integer(std::string_view key) const {
  if (!model_.meta(full(key))) return std::nullopt;
  return integer(key);
}

double HParamsReader::number(std::string_view key) const {
  const MetaValue& v = require(key);
  if (!v.is_number()) throw Error(model_.path() + ": metadata key '" + full(key) + "' has type " +
                                  meta_type_name(v.type) + ", expected a number");
  return v.f;
}

std::optional<double> HParamsReader::find_number(std::string_view key) const {
  if (!model_.meta(full(key))) return std::nullopt;
  return number(key);
}

std::optional<std::string_view> HParamsReader::find_string(std::string_view key) const {
  const MetaValue* v = model_.meta(full(key));
  if (!v) return std::nullopt;
  if (v->type != MetaType::STRING)
    throw Error(model_.path() + ": metadata key '" + full(key) + "' has type " + meta_type_name(v->type) +
                ", expected a string");
  return v->str;
}

std::optional<uint64_t> HParamsReader::find_array_length(std::string_view full_key) const {
  const MetaValue* v = model_.meta(full_key);
  if (!v || v->type != MetaType::ARRAY) return std::nullopt;
  return v->count;
}

HParams HParamsReader::common() const {
  HParams hp;
  hp.arch = arch_;
  hp.n_embd = integer("embedding_length");
  hp.n_ff = integer("feed_forward_length");
  hp.n_layer = integer("block_count");
  hp.n_head = integer("attention.head_count");
  hp.n_head_kv = hp.n_head;
  const auto vocab = find_integer("vocab_size");
  hp.n_vocab = vocab ? *vocab : static_cast<int64_t>(find_array_length("tokenizer.ggml.tokens").value_or(0));
  return hp;
}

}  // namespace semline::archs
