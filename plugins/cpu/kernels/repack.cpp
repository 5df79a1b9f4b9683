#include "kernels/repack.h"

#include <cstring>

#include <semline/error.h>

namespace semline::cpu {
namespace {

struct Layout {
  size_t block;  // bytes of a block in the file
  size_t quant;  // bytes of a repacked block's quants: 16 rows x the block's quant bytes
  int groups;    // 64-byte groups per block
  uint32_t flip; // XORed into each 4 quant bytes: Q8_0's offset to unsigned
};

constexpr Layout layout_of(DType t) {
  return t == DType::Q8_0 ? Layout{sizeof(BlockQ8_0), 512, 8, 0x80808080u} : Layout{sizeof(BlockQ4_0), 256, 4, 0};
}

template <DType T>
void repack(const char* w, size_t w_stride, int64_t n_out, int64_t k, int64_t t0, int64_t t1, char* dst) {
  constexpr Layout L = layout_of(T);
  const int64_t nb = k / 32;
  const size_t tile = repacked_tile_bytes(T, k), pair = 64 + 2 * L.quant;
  for (int64_t ti = t0; ti < t1; ++ti) {
    char* out = dst + static_cast<size_t>(ti) * tile;
    const int64_t row0 = ti * kRepackRows;
    const int64_t rows = n_out - row0 < kRepackRows ? n_out - row0 : kRepackRows;
    for (int64_t b = 0; b < nb; ++b) {
      const size_t odd = static_cast<size_t>(b & 1);
      char* scales = out + static_cast<size_t>(b >> 1) * pair + 32 * odd;
      char* quants = out + static_cast<size_t>(b >> 1) * pair + 64 + odd * L.quant;
      if (b == nb - 1 && !odd) std::memset(scales + 32, 0, 32);  // an odd last block's pair: no second
      for (int64_t l = 0; l < kRepackRows; ++l) {
        if (l >= rows) {  // padding rows: zero scales, so they add nothing to a masked-off lane
          std::memset(scales + 2 * l, 0, 2);
          for (int g = 0; g < L.groups; ++g) std::memset(quants + 64 * g + 4 * l, 0, 4);
          continue;
        }
        const char* src = w + static_cast<size_t>(row0 + l) * w_stride + static_cast<size_t>(b) * L.block;
        std::memcpy(scales + 2 * l, src, 2);
        for (int g = 0; g < L.groups; ++g) {
          uint32_t v;
          std::memcpy(&v, src + 2 + 4 * g, 4);
          v ^= L.flip;
          std::memcpy(quants + 64 * g + 4 * l, &v, 4);
        }
      }
    }
  }
}

}  // namespace

size_t repacked_tile_bytes(DType t, int64_t k) {
  const size_t nb = static_cast<size_t>(k / 32);
  return (nb + 1) / 2 * 64 + nb * layout_of(t).quant;
}

void repack_tiles(DType t, const char* w, size_t w_stride, int64_t n_out, int64_t k, int64_t t0, int64_t t1,
                  char* dst) {
  switch (t) {
    case DType::Q8_0: return repack<DType::Q8_0>(w, w_stride, n_out, k, t0, t1, dst);
    case DType::Q4_0: return repack<DType::Q4_0>(w, w_stride, n_out, k, t0, t1, dst);
    default: throw Error(std::string("cpu kernels: ") + dtype_name(t) + " weights are not repacked; only Q8_0 and Q4_0 are");
  }
}

}  // namespace semline::cpu
