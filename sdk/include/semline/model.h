// semline SDK — the model as stages see it: metadata values, weights, hyper-parameters.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "semline/tensor.h"

namespace semline {

// GGUF metadata value types (the file's type ids).
enum class MetaType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* meta_type_name(MetaType t);

// One metadata value. Strings and numeric arrays point into the mapped file (valid while the
// model is open); arrays of strings and arrays of arrays are indexed at load.
struct MetaValue {
  MetaType type = MetaType::U8;
  // scalars
  uint64_t u = 0;  // U8..U64, BOOL
  int64_t i = 0;   // I8..I64 (also set for unsigned values that fit)
  double f = 0;    // F32, F64 (also set for every integer)
  std::string_view str;  // STRING
  // arrays
  MetaType elem = MetaType::U8;
  uint64_t count = 0;
  const unsigned char* raw = nullptr;        // numeric array elements, packed little-endian
  std::vector<std::string_view> strings;     // array of STRING
  std::vector<MetaValue> arrays;             // array of ARRAY

  bool is_int() const { return type <= MetaType::I32 || type == MetaType::U64 || type == MetaType::I64; }
  bool is_number() const { return is_int() || type == MetaType::F32 || type == MetaType::F64; }
  // Element i of a numeric array, converted (callers check elem first).
  template <class T>
  T at(uint64_t i) const;
};

size_t meta_type_size(MetaType t);  // bytes of a scalar of this type, 0 for STRING/ARRAY

template <class T>
T MetaValue::at(uint64_t idx) const {
  const unsigned char* p = raw + idx * meta_type_size(elem);
  auto load = [p](auto v) { std::memcpy(&v, p, sizeof v); return v; };
  switch (elem) {
    case MetaType::U8: return static_cast<T>(load(uint8_t{}));
    case MetaType::I8: return static_cast<T>(load(int8_t{}));
    case MetaType::U16: return static_cast<T>(load(uint16_t{}));
    case MetaType::I16: return static_cast<T>(load(int16_t{}));
    case MetaType::U32: return static_cast<T>(load(uint32_t{}));
    case MetaType::I32: return static_cast<T>(load(int32_t{}));
    case MetaType::F32: return static_cast<T>(load(float{}));
    case MetaType::BOOL: return static_cast<T>(load(uint8_t{}));
    case MetaType::U64: return static_cast<T>(load(uint64_t{}));
    case MetaType::I64: return static_cast<T>(load(int64_t{}));
    case MetaType::F64: return static_cast<T>(load(double{}));
    default: return T{};
  }
}

inline const char* meta_type_name(MetaType t) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "?";
}
inline size_t meta_type_size(MetaType t) {
  static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? sizes[i] : 0;
}

// Read access to an open model file: metadata by key, weights by name (host views).
class ModelView {
 public:
  virtual ~ModelView() = default;
  virtual const MetaValue* meta(std::string_view key) const = 0;  // null when absent
  virtual const Tensor* weight(std::string_view name) const = 0;  // null when absent
  virtual std::string path() const = 0;
  // Every metadata key and every weight name, in file order: the loader checks that the line
  // understands all of them.
  virtual std::vector<std::string_view> meta_keys() const = 0;
  virtual std::vector<std::string_view> weight_names() const = 0;
};

// How attention rotates queries and keys by position; values as llama.cpp numbers them.
//   None:   no rotary embedding (positions enter elsewhere, e.g. GPT-2's learned position rows)
//   Normal: pairs (2i, 2i + 1) of each head rotated (llama, GGUF's llama layout)
//   NeoX:   pairs (i, i + rope_dim / 2) rotated
enum class RopeType : int32_t { None = -1, Normal = 0, NeoX = 2 };

// The feed-forward nonlinearity.
//   Silu:     the SwiGLU gate of llama: silu(gate x) * up x
//   Gelu:     exact GELU, x * Phi(x) with the normal CDF by erf (PyTorch's F.gelu default)
//   GeluTanh: the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2's gelu_new)
enum class Activation : int32_t { Silu, Gelu, GeluTanh };

// Hyper-parameters of a decoder-only transformer, read by the architecture template.
struct HParams {
  std::string arch;       // general.architecture
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;     // model width
  int64_t n_ff = 0;       // feed-forward width
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;   // n_embd / n_head unless the model says otherwise
  int64_t rope_dim = 0;   // dimensions rotated per head
  double rope_base = 10000.0;
  double rope_freq_scale = 1.0;  // positions scaled by it before rotating (linear RoPE scaling: 1 / factor)
  RopeType rope_type = RopeType::Normal;
  double norm_eps = 1e-5;
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t sliding_window = 0;  // 0: none
  Activation ffn_act = Activation::Silu;  // the feed-forward nonlinearity
  // Both sub-layers of a block read the block's input (GPT-NeoX, GPT-J):
  // h += attention(norm1(h)) + ffn(norm2(h)), instead of the second reading the first's result.
  bool parallel_residual = false;
  // The numbers of one family that the others do not have, by name (5.0): a family adds a key
  // here, not a field. Read by the stations of that family's features; absent: the feature is off.
  //   embedding_scale      the embedding rows are multiplied by it (Gemma: sqrt(n_embd))
  //   attention_scale      q . k is multiplied by it instead of 1 / sqrt(head_dim)
  //   attn_logit_softcap   scores become cap * tanh(score / cap) before the softmax
  //   final_logit_softcap  logits become cap * tanh(logit / cap)
  //   swa_period           with sliding_window: layer L attends over the window when
  //                        L % period < period - 1 (Gemma 2: 2, the even layers), else causally
  //   expert_weights_softmax  1: the chosen experts weigh by their softmax over all experts, not
  //                        renormalised over the chosen (Jamba)
  //   ssm_*                a state-space mixer's sizes (Mamba: ssm_d_inner, ssm_d_conv,
  //                        ssm_d_state, ssm_dt_rank, ssm_n_head, ssm_n_group, ssm_group_width;
  //                        ssm_dt_b_c_rms)
  std::map<std::string, double> extra;
  double extra_or(const std::string& key, double fallback) const {
    auto it = extra.find(key);
    return it == extra.end() ? fallback : it->second;
  }
};

}  // namespace semline
