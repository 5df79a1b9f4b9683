// semline SDK — scalar conversions between the weight dtypes and float.
//
// The plain, portable definitions: half and bfloat16 bit conversions (round to nearest even) and
// the GGUF Q8_0 / Q4_0 block codecs. Backends use faster kernels of their own and test them
// against these.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "semline/tensor.h"

namespace semline {

inline float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: shift until the implicit bit appears
      int k = 0;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        ++k;
      }
      x = sign | (static_cast<uint32_t>(113 - k) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));
  int32_t e = static_cast<int32_t>(exp) - 112;  // rebias 127 -> 15
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {  // half subnormal (or zero)
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  // a carry rounds into the exponent
  return static_cast<uint16_t>(half);
}

inline float bf16_to_f32(uint16_t h) {
  uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// Q8_0: d = max|x| / 127, q = round(x / d).
inline void quantize_block_q8_0(const float* x, BlockQ8_0& b) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  float d = amax / 127.0f;
  float id = d != 0 ? 1.0f / d : 0.0f;
  b.d = f32_to_f16(d);
  for (int i = 0; i < 32; ++i) b.qs[i] = static_cast<int8_t>(std::lround(x[i] * id));
}

// Q4_0: d = m / -8 where m is the value of largest magnitude, q = clamp(round(x / d) + 8, 0, 15).
inline void quantize_block_q4_0(const float* x, BlockQ4_0& b) {
  float amax = 0, m = 0;
  for (int i = 0; i < 32; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      m = x[i];
    }
  }
  float d = m / -8.0f;
  float id = d != 0 ? 1.0f / d : 0.0f;
  b.d = f32_to_f16(d);
  for (int i = 0; i < 16; ++i) {
    int lo = static_cast<int>(x[i] * id + 8.5f);
    int hi = static_cast<int>(x[i + 16] * id + 8.5f);
    lo = lo < 0 ? 0 : (lo > 15 ? 15 : lo);
    hi = hi < 0 ? 0 : (hi > 15 ? 15 : hi);
    b.qs[i] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

inline void dequantize_block_q8_0(const BlockQ8_0& b, float* y) {
  float d = f16_to_f32(b.d);
  for (int i = 0; i < 32; ++i) y[i] = d * b.qs[i];
}

inline void dequantize_block_q4_0(const BlockQ4_0& b, float* y) {
  float d = f16_to_f32(b.d);
  for (int i = 0; i < 16; ++i) {
    y[i] = d * ((b.qs[i] & 0x0f) - 8);
    y[i + 16] = d * ((b.qs[i] >> 4) - 8);
  }
}

// Converts one row of n elements of any dtype to float (n a multiple of the block size).
inline void dequantize_row(DType t, const void* src, float* y, int64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(y, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, static_cast<const char*>(src) + 2 * i, 2);
        y[i] = f16_to_f32(h);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, static_cast<const char*>(src) + 2 * i, 2);
        y[i] = bf16_to_f32(h);
      }
      return;
    case DType::Q8_0:
      for (int64_t b = 0; b < n / 32; ++b)
        dequantize_block_q8_0(static_cast<const BlockQ8_0*>(src)[b], y + 32 * b);
      return;
    case DType::Q4_0:
      for (int64_t b = 0; b < n / 32; ++b)
        dequantize_block_q4_0(static_cast<const BlockQ4_0*>(src)[b], y + 32 * b);
      return;
  }
}

// Converts one row of n floats to dtype t (n a multiple of the block size).
inline void quantize_row(DType t, const float* x, void* dst, int64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, x, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h = f32_to_f16(x[i]);
        std::memcpy(static_cast<char*>(dst) + 2 * i, &h, 2);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(static_cast<char*>(dst) + 2 * i, &h, 2);
      }
      return;
    case DType::Q8_0:
      for (int64_t b = 0; b < n / 32; ++b)
        quantize_block_q8_0(x + 32 * b, static_cast<BlockQ8_0*>(dst)[b]);
      return;
    case DType::Q4_0:
      for (int64_t b = 0; b < n / 32; ++b)
        quantize_block_q4_0(x + 32 * b, static_cast<BlockQ4_0*>(dst)[b]);
      return;
  }
}

}  // namespace semline
