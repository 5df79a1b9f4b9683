// semline SDK — data types and tensor views.
//
// A Tensor is a view: dtype, shape, byte strides, and a place (a Buffer of some backend plus a
// byte offset). It owns nothing. Shapes are written innermost-first, as GGUF writes them:
// ne[0] is the length of a row, ne[1] the number of rows, and so on; a weight matrix of a linear
// map from n_in to n_out features has ne = {n_in, n_out} and is stored row-major [n_out][n_in].
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace semline {

// Values are the GGUF tensor type ids, so a file's type field maps onto DType unchanged.
enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  BF16 = 30,
};

// Block-quantised layouts (GGUF):
//   Q8_0: 32 weights = { f16 scale d; int8 q[32]; }            value = d * q[i]
//   Q4_0: 32 weights = { f16 scale d; uint8 q[16]; }           value = d * (nibble - 8),
//         weight i < 16 in the low nibble of q[i], weight i + 16 in the high nibble of q[i].
inline constexpr int64_t kQ8_0Block = 32;
inline constexpr int64_t kQ4_0Block = 32;
struct BlockQ8_0 {
  uint16_t d;  // IEEE half
  int8_t qs[32];
};
struct BlockQ4_0 {
  uint16_t d;  // IEEE half
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ8_0) == 34, "GGUF Q8_0 block layout");
static_assert(sizeof(BlockQ4_0) == 18, "GGUF Q4_0 block layout");

// Elements per block (1 for plain types) and bytes per block.
constexpr int64_t dtype_block_size(DType t) {
  return (t == DType::Q8_0 || t == DType::Q4_0) ? 32 : 1;
}
constexpr int64_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::Q8_0: return sizeof(BlockQ8_0);
    case DType::Q4_0: return sizeof(BlockQ4_0);
  }
  return 0;
}
// True when the value is one of the DType ids above.
constexpr bool dtype_is_known(uint32_t v) {
  return v == 0 || v == 1 || v == 2 || v == 8 || v == 30;
}
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
  }
  return "?";
}
// Bytes of one row of n elements; n must be a multiple of the block size.
constexpr int64_t dtype_row_bytes(DType t, int64_t n) {
  return n / dtype_block_size(t) * dtype_block_bytes(t);
}

class Buffer;

inline constexpr int kMaxDims = 4;

struct Tensor {
  DType dtype = DType::F32;
  int32_t ndim = 0;
  int64_t ne[kMaxDims] = {1, 1, 1, 1};  // elements per dimension, innermost first
  int64_t nb[kMaxDims] = {0, 0, 0, 0};  // byte stride per dimension (nb[0] = block bytes)
  Buffer* buffer = nullptr;             // where the bytes live; null for a bare host view
  void* host = nullptr;                 // host address of element 0 when host-visible, else null
  size_t offset = 0;                    // byte offset of element 0 inside buffer

  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t row_bytes() const { return dtype_row_bytes(dtype, ne[0]); }
  bool contiguous() const {
    int64_t s = dtype_block_bytes(dtype);
    if (nb[0] != s) return false;
    s = row_bytes();
    for (int d = 1; d < kMaxDims; ++d) {
      if (nb[d] != s) return false;
      s *= ne[d];
    }
    return true;
  }
  // Bytes from element 0 to the end of the last row, whatever order the strides nest in.
  int64_t span_bytes() const {
    int64_t s = row_bytes();
    for (int d = 1; d < kMaxDims; ++d) s += (ne[d] - 1) * nb[d];
    return s;
  }
  template <class T>
  T* data() const { return static_cast<T*>(host); }
};

// A contiguous view of the given shape (innermost first) at a host address or buffer offset.
inline Tensor make_tensor(DType t, std::initializer_list<int64_t> shape, void* host = nullptr,
                          Buffer* buffer = nullptr, size_t offset = 0) {
  Tensor x;
  x.dtype = t;
  x.ndim = static_cast<int32_t>(shape.size());
  int d = 0;
  for (int64_t n : shape) x.ne[d++] = n;
  x.nb[0] = dtype_block_bytes(t);
  x.nb[1] = x.row_bytes();
  for (d = 2; d < kMaxDims; ++d) x.nb[d] = x.nb[d - 1] * x.ne[d - 1];
  x.host = host;
  x.buffer = buffer;
  x.offset = offset;
  return x;
}

// "F32 [64, 172]" — for logs and error messages.
inline std::string tensor_shape_string(const Tensor& t) {
  std::string s = std::string(dtype_name(t.dtype)) + " [";
  for (int d = 0; d < t.ndim; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}

}  // namespace semline
