#include "hparams_reader.h"

#include <algorithm>

#include <semline/error.h>

#include "archs.h"

namespace semline::archs {

std::string HParamsReader::full(std::string_view key) const {
  if (std::find(known_.begin(), known_.end(), key) == known_.end())
    throw Error("the " + arch_ + " template reads '" + arch_ + "." + std::string(key) +
                "' but does not list it among its metadata_keys");
  return arch_ + "." + std::string(key);
}

const MetaValue& HParamsReader::require(std::string_view key) const {
  const MetaValue* v = find(key);
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
  if (!find(key)) return std::nullopt;
  return integer(key);
}

double HParamsReader::number(std::string_view key) const {
  const MetaValue& v = require(key);
  if (!v.is_number()) throw Error(model_.path() + ": metadata key '" + full(key) + "' has type " +
                                  meta_type_name(v.type) + ", expected a number");
  return v.f;
}

std::optional<double> HParamsReader::find_number(std::string_view key) const {
  if (!find(key)) return std::nullopt;
  return number(key);
}

std::optional<std::string_view> HParamsReader::find_string(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != MetaType::STRING)
    throw Error(model_.path() + ": metadata key '" + full(key) + "' has type " + meta_type_name(v->type) +
                ", expected a string");
  return v->str;
}

std::optional<bool> HParamsReader::find_bool(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != MetaType::BOOL)
    throw Error(model_.path() + ": metadata key '" + full(key) + "' has type " + meta_type_name(v->type) +
                ", expected a bool");
  return v->u != 0;
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

std::vector<std::string> rope_decoder_keys(std::string_view eps_key) {
  return {"context_length", "embedding_length", "feed_forward_length", "block_count", "vocab_size",
          "attention.head_count", "attention.head_count_kv", "attention.key_length", "attention.value_length",
          std::string(eps_key), "rope.freq_base", "rope.dimension_count", "rope.scaling.type",
          "rope.scaling.factor",
          // Read by llama.cpp for YaRN alone, which is refused: informational for none and linear.
          "rope.scaling.original_context_length", "rope.scaling.finetuned"};
}

HParams HParamsReader::rope_decoder(RopeType rope, std::string_view eps_key) const {
  HParams hp = common();
  hp.n_head_kv = find_integer("attention.head_count_kv").value_or(hp.n_head);
  hp.n_ctx_train = find_integer("context_length").value_or(2048);
  hp.norm_eps = number(eps_key);
  hp.rope_base = find_number("rope.freq_base").value_or(10000.0);
  hp.rope_type = rope;
  check_hparams(model_, hp);
  const auto k_len = find_integer("attention.key_length"), v_len = find_integer("attention.value_length");
  hp.head_dim = k_len.value_or(hp.n_embd / hp.n_head);
  if (hp.head_dim < 1 || v_len.value_or(hp.head_dim) != hp.head_dim)
    throw Error(model_.path() + ": " + full("attention.key_length") + " (" + std::to_string(hp.head_dim) + ") and " +
                full("attention.value_length") + " (" + std::to_string(v_len.value_or(hp.head_dim)) +
                ") must be equal and positive: semline's attention has one head size");
  hp.rope_dim = find_integer("rope.dimension_count").value_or(hp.head_dim);
  if (hp.rope_dim > hp.head_dim || hp.rope_dim % 2)
    throw Error(model_.path() + ": " + full("rope.dimension_count") + " = " + std::to_string(hp.rope_dim) +
                " must be even and at most the head size " + std::to_string(hp.head_dim));
  // Linear scaling divides positions by the factor (llama.cpp's freq_scale = 1 / factor); YaRN
  // and LongRoPE change the angles otherwise and are refused rather than half done.
  const std::string scaling(find_string("rope.scaling.type").value_or("none"));
  if (scaling == "linear") {
    const double factor = number("rope.scaling.factor");
    if (!(factor > 0))
      throw Error(model_.path() + ": " + full("rope.scaling.factor") + " = " + std::to_string(factor) + " must be > 0");
    hp.rope_freq_scale = 1.0 / factor;
  } else if (scaling != "none") {
    throw Error(model_.path() + ": " + full("rope.scaling.type") + " = '" + scaling +
                "' is not supported; semline computes none and linear");
  }
  return hp;
}

}  // namespace semline::archs
