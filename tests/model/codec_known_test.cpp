// Known answers for the weight codecs. Every float64 reference of the suite takes its weights
// through the SDK's own quantize_row / dequantize_row, so an error shared by an encoder and its
// decoder would pass every other test. Here the answers come from elsewhere:
//   - bytes llama.cpp's llama-quantize --pure wrote (models/codec, recorded by
//     scripts/record-codec-answers.sh from scripts/codec_source.py's chosen values) against
//     quantize_row and semline's `quantize`, and their values decoded by this file's own plain
//     decoder against dequantize_row;
//   - F16 and BF16 bit patterns of chosen values (zeros, subnormals, the ends of the range,
//     infinities, NaN, rounding ties) from the IEEE 754 rules, written out by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <semline/codec.h>

#include "core/model/gguf.h"
#include "core/model/quantize.h"
#include "model_test_util.h"

using namespace semline;
using semline::gguf::GgufFile;

namespace {

const std::filesystem::path kCodec = test::models_dir() / "codec";

// An F16 value decoded from its fields, independently of codec.h.
double f16_value(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0x1f) v = mant ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  else if (exp == 0) v = std::ldexp(mant, -24);
  else v = std::ldexp(1024 + mant, exp - 25);
  return sign ? -v : v;
}

uint16_t u16_at(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// One row as llama.cpp's block layouts define it: Q8_0 blocks of (f16 d, 32 x int8), Q4_0
// blocks of (f16 d, 16 bytes: element i in the low nibble of byte i, element i + 16 in its high
// nibble, each stored + 8), F16 and BF16 little-endian 16-bit words.
std::vector<double> decode_row(DType t, const uint8_t* p, int64_t n) {
  std::vector<double> v;
  for (int64_t b = 0; b < n / 32 && (t == DType::Q8_0 || t == DType::Q4_0); ++b) {
    if (t == DType::Q8_0) {
      const uint8_t* blk = p + 34 * b;
      const double d = f16_value(u16_at(blk));
      for (int i = 0; i < 32; ++i) v.push_back(d * static_cast<int8_t>(blk[2 + i]));
    } else {
      const uint8_t* blk = p + 18 * b;
      const double d = f16_value(u16_at(blk));
      std::vector<double> block(32);
      for (int i = 0; i < 16; ++i) {
        block[i] = d * ((blk[2 + i] & 0x0f) - 8);
        block[i + 16] = d * ((blk[2 + i] >> 4) - 8);
      }
      v.insert(v.end(), block.begin(), block.end());
    }
  }
  for (int64_t i = 0; i < n && t == DType::F16; ++i) v.push_back(f16_value(u16_at(p + 2 * i)));
  for (int64_t i = 0; i < n && t == DType::BF16; ++i) {
    const uint32_t bits = static_cast<uint32_t>(u16_at(p + 2 * i)) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    v.push_back(f);
  }
  return v;
}

bool same_value(double a, double b) { return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b)); }

std::string hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += std::string{digits[p[i] >> 4], digits[p[i] & 15]} + (i + 1 < n ? " " : "");
  return s;
}

const std::vector<std::pair<DType, std::string>> kLlamaFiles = {
    {DType::Q8_0, "llama-q8_0.gguf"}, {DType::Q4_0, "llama-q4_0.gguf"}, {DType::F16, "llama-f16.gguf"}, {DType::BF16, "llama-bf16.gguf"}};

}  // namespace

TEST_CASE("quantize_row writes the bytes llama-quantize wrote, row by row, for Q8_0, Q4_0, F16 and BF16") {
  auto src = GgufFile::open(kCodec / "source-f32.gguf");
  for (const auto& [dtype, file] : kLlamaFiles) {
    INFO(file);
    auto theirs = GgufFile::open(kCodec / file);
    int matrices = 0;
    for (const auto& t : theirs->tensors()) {
      if (t.view.dtype == DType::F32) continue;  // norms stay F32
      REQUIRE(t.view.dtype == dtype);
      const auto* s = src->tensor_info(t.name);
      REQUIRE(s);
      const int64_t n = s->view.ne[0], rows = s->view.ne[1];
      const size_t row_bytes = dtype_row_bytes(dtype, n);
      REQUIRE(t.bytes == row_bytes * rows);
      std::vector<uint8_t> mine(row_bytes);
      for (int64_t r = 0; r < rows; ++r) {
        const auto* in = static_cast<const float*>(s->view.host) + r * n;
        const auto* want = static_cast<const uint8_t*>(t.view.host) + r * row_bytes;
        quantize_row(dtype, in, mine.data(), n);
        INFO(t.name << " row " << r << "\n  llama.cpp: " << hex(want, row_bytes) << "\n  semline:   " << hex(mine.data(), row_bytes));
        REQUIRE(std::memcmp(mine.data(), want, row_bytes) == 0);
      }
      ++matrices;
    }
    CHECK(matrices == 9);
  }
}

TEST_CASE("dequantize_row gives the values llama.cpp's blocks mean, exactly") {
  for (const auto& [dtype, file] : kLlamaFiles) {
    INFO(file);
    auto theirs = GgufFile::open(kCodec / file);
    for (const auto& t : theirs->tensors()) {
      if (t.view.dtype == DType::F32) continue;
      const int64_t n = t.view.ne[0];
      const size_t row_bytes = dtype_row_bytes(dtype, n);
      std::vector<float> mine(static_cast<size_t>(n));
      for (int64_t r = 0; r < t.view.ne[1]; ++r) {
        const auto* row = static_cast<const uint8_t*>(t.view.host) + r * row_bytes;
        dequantize_row(dtype, row, mine.data(), n);
        const std::vector<double> want = decode_row(dtype, row, n);
        REQUIRE(want.size() == static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          INFO(t.name << " row " << r << " element " << i << ": " << mine[i] << " vs " << want[i]);
          REQUIRE(same_value(mine[i], want[i]));  // d * q is exact in float
        }
      }
    }
  }
}

TEST_CASE("semline quantize writes llama-quantize --pure's tensors byte for byte (Q8_0, Q4_0)") {
  test::TempDir dir;
  for (const auto& [dtype, file] : kLlamaFiles) {
    if (dtype != DType::Q8_0 && dtype != DType::Q4_0) continue;
    INFO(file);
    const auto out = dir.path() / file;
    quantize_gguf(kCodec / "source-f32.gguf", out, dtype);
    test::check_same_tensors(*GgufFile::open(out), *GgufFile::open(kCodec / file));
  }
}

TEST_CASE("F16 and BF16 encodings of chosen values are IEEE 754's, round to nearest even") {
  const float inf = INFINITY, nan = std::numeric_limits<float>::quiet_NaN();
  struct Known {
    float value;
    uint16_t f16, bf16;
  };
  // Written out from the formats' rules: F16 has 10 mantissa bits, exponent bias 15, subnormals
  // down to 2^-24, largest finite 65504; BF16 is the upper half of the F32 bits, rounded.
  const Known known[] = {
      {0.0f, 0x0000, 0x0000},
      {-0.0f, 0x8000, 0x8000},
      {1.0f, 0x3c00, 0x3f80},
      {-2.0f, 0xc000, 0xc000},
      {0.1f, 0x2e66, 0x3dcd},                   // F32 0x3dcccccd
      {65504.0f, 0x7bff, 0x4780},               // largest finite F16
      {65519.0f, 0x7bff, 0x4780},               // below the halfway point to 65536: stays finite
      {65520.0f, 0x7c00, 0x4780},               // halfway: rounds to even, which is infinity
      {1e6f, 0x7c00, 0x4974},                   // F32 0x49742400
      {-1e6f, 0xfc00, 0xc974},
      {0x1p-14f, 0x0400, 0x3880},               // smallest normal F16
      {0x1.ff8p-15f, 0x03ff, 0x3880},           // largest subnormal F16 (1023 x 2^-24); BF16 rounds up
      {0x1p-24f, 0x0001, 0x3380},               // smallest subnormal F16
      {0x1p-25f, 0x0000, 0x3300},               // halfway between 0 and 2^-24: to even, zero
      {0x1.8p-25f, 0x0001, 0x3340},             // above halfway
      {0x1.8p-24f, 0x0002, 0x33c0},             // halfway between 1 and 2 units: to even, 2
      {0x1p-26f, 0x0000, 0x3280},
      {0x1.002p0f, 0x3c00, 0x3f80},             // F16 tie: to even (down)
      {0x1.006p0f, 0x3c02, 0x3f80},             // F16 tie: to even (up)
      {0x1.ffep0f, 0x4000, 0x4000},             // F16 tie that carries into the exponent
      {-0x1.002p1f, 0xc000, 0xc000},
      {0x1.01p0f, 0x3c04, 0x3f80},              // 1 + 2^-8: BF16 tie, to even (down)
      {0x1.03p0f, 0x3c0c, 0x3f82},              // 1 + 3 x 2^-8: BF16 tie, to even (up)
      {257.0f, 0x5c04, 0x4380},                 // F32 0x43808000: BF16 tie, down
      {259.0f, 0x5c0c, 0x4382},                 // F32 0x43818000: BF16 tie, up
      {3e38f, 0x7c00, 0x7f62},                  // F32 0x7f61b1e6
      {std::numeric_limits<float>::max(), 0x7c00, 0x7f80},  // rounds past BF16's largest: infinity
      {1e-40f, 0x0000, 0x0001},                 // an F32 subnormal, 0x000116c2
      {inf, 0x7c00, 0x7f80},
      {-inf, 0xfc00, 0xff80},
  };
  for (const Known& k : known) {
    INFO("value " << k.value);
    CHECK(f32_to_f16(k.value) == k.f16);
    CHECK(f32_to_bf16(k.value) == k.bf16);
    // Decoding gives back the value each pattern stands for.
    CHECK(same_value(f16_to_f32(k.f16), f16_value(k.f16)));
    uint32_t bits = static_cast<uint32_t>(k.bf16) << 16;
    float b;
    std::memcpy(&b, &bits, 4);
    CHECK(same_value(bf16_to_f32(k.bf16), b));
  }
  // Exactly representable values come back unchanged.
  for (uint16_t h : {0x0001, 0x03ff, 0x0400, 0x3555, 0x3c00, 0x7bff, 0x8001, 0xfbff})
    CHECK(f32_to_f16(f16_to_f32(h)) == h);
  CHECK(f16_to_f32(0x3555) == 0x1.554p-2f);
  CHECK(f16_to_f32(0x0001) == 0x1p-24f);
  CHECK(f16_to_f32(0x7c00) == inf);
  CHECK(f16_to_f32(0xfc00) == -inf);
  // NaN stays NaN, quiet, with its sign: F16 0x7e00, BF16 0x7fc0 (the F32 quiet NaN's upper half).
  CHECK(f32_to_f16(nan) == 0x7e00);
  CHECK(f32_to_f16(-nan) == 0xfe00);
  CHECK(f32_to_bf16(nan) == 0x7fc0);
  float signalling;
  const uint32_t snan = 0x7f800001u;  // a signalling NaN whose payload sits below BF16's bits
  std::memcpy(&signalling, &snan, 4);
  CHECK(f32_to_bf16(signalling) == 0x7fc0);  // still a NaN, not infinity
  CHECK(std::isnan(f16_to_f32(0x7e00)));
  CHECK(std::isnan(f16_to_f32(0x7c01)));
  CHECK(std::isnan(bf16_to_f32(0x7fc0)));
}
