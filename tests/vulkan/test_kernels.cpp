// The kernels on their own: matrix-vector (up to 8 rows) and tiled matrix-matrix products for
// every weight dtype, odd shapes, overwrite and accumulate (each on both kernels), with subgroup
// and with shared-memory reductions, and with a bias, against float64 products of the exactly
// dequantised weights; the GELU kernels against float64 GELU.
//
// Tolerance 1e-5 for every dtype: the kernels dequantise the stored weights exactly and multiply
// float activations, so only float rounding of the sums differs (about sqrt(n_in) * 6e-8 of the
// sum of the terms' magnitudes for these widths). The matrix products are judged against that
// sum, not against the result: one 64-wide output, accumulated onto y, can cancel to a small
// value that its own rounding error is a large fraction of.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "ops/linear.h"
#include "vulkan/vulkan_test_util.h"

using namespace semline;
using namespace semline::vktest;

namespace {

vk::DevWeight device_weight(vk::VulkanBackend& be, const Weight& w) {
  const Tensor t = be.upload_weight(make_tensor(w.dtype, {w.n_in, w.n_out}, const_cast<void*>(w.data())));
  vk::DevWeight d;
  d.dtype = w.dtype;
  d.n_in = w.n_in;
  d.n_out = w.n_out;
  d.buf = &be.buffer_of(t, "weight").gpu();
  d.offset = static_cast<uint32_t>(t.offset);
  d.row_bytes = static_cast<uint32_t>(dtype_row_bytes(w.dtype, w.n_in));
  return d;
}

}  // namespace

TEST_CASE("linear maps match float64 for every dtype, batch size and reduction path (needs a Vulkan device)",
          "[kernels]") {
  SEMLINE_REQUIRE_VULKAN();
  struct Shape {
    int64_t n_in, n_out;
  };
  for (bool subgroups : reduction_modes()) {
    auto be = make_backend(subgroups);
    for (DType dt : kAllWeights)
      for (Shape s : {Shape{96, 67}, Shape{256, 130}, Shape{64, 1}})
        for (int64_t m : {1, 3, 8, 9, 70}) {
          const bool accumulate = m % 2 == 1;  // both modes on both kernels
            INFO((subgroups ? "subgroups" : "shared memory") << ", " << dtype_name(dt) << " [" << s.n_in << ", "
                                                            << s.n_out << "], " << m << " rows"
                                                            << (accumulate ? ", accumulating" : ""));
            const Weight w = make_weight(dt, s.n_in, s.n_out, 0.5f);
            const vk::Linear lin(*be, device_weight(*be, w));
            // Rows with a stride wider than the row, at an offset, to catch indexing slips.
            const int64_t xs = s.n_in + 5, ys = s.n_out + 3;
            const std::vector<float> xh = random_floats(m * xs + 7), yh = random_floats(m * ys + 2);
            DeviceRows x(*be, xh, 1), y(*be, yh, 1);
            const vk::DevRows xr{&be->buffer_of(x.t, "x").gpu(), 7, static_cast<uint32_t>(xs)};
            const vk::DevRows yr{&be->buffer_of(y.t, "y").gpu(), 2, static_cast<uint32_t>(ys)};
            lin.run(*be, xr, yr, m, accumulate);
            const std::vector<float> got = read_back(*be, y.t);
            std::vector<double> g, want, magnitude;
            for (int64_t r = 0; r < m; ++r)
              for (int64_t j = 0; j < s.n_out; ++j) {
                double acc = 0, mag = 0;
                for (int64_t k = 0; k < s.n_in; ++k) {
                  const double term = w.value[j * s.n_in + k] * xh[7 + r * xs + k];
                  acc += term;
                  mag += std::fabs(term);
                }
                const size_t at = static_cast<size_t>(2 + r * ys + j);
                // Accumulating, the result is y + W x in float: compared whole, since subtracting
                // y back out would leave the rounding of a large y against a small W x.
                want.push_back(acc + (accumulate ? yh[at] : 0.0));
                magnitude.push_back(mag + (accumulate ? std::fabs(yh[at]) : 0.0));
                g.push_back(static_cast<double>(got[at]));
              }
            CHECK(rel_err(g, want, magnitude) <= 1e-5);
            // Values between and around the rows stay as they were.
            for (int64_t r = 0; r < m; ++r)
              for (int64_t j = s.n_out; j < ys && 2 + r * ys + j < static_cast<int64_t>(yh.size()); ++j)
                REQUIRE(got[2 + r * ys + j] == yh[2 + r * ys + j]);
            REQUIRE(got[0] == yh[0]);
            REQUIRE(got[1] == yh[1]);
          }
  }
}

TEST_CASE("F32 and F16 weights with widths that are not multiples of 32 (needs a Vulkan device)", "[kernels]") {
  SEMLINE_REQUIRE_VULKAN();
  auto be = make_backend();
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    for (int64_t m : {1, 20}) {
      INFO(dtype_name(dt) << ", " << m << " rows");
      const Weight w = make_weight(dt, 172, 45, 0.5f);  // stories260K's n_ff is 172
      const vk::Linear lin(*be, device_weight(*be, w));
      const std::vector<float> xh = random_floats(m * 172);
      DeviceRows x(*be, xh, 172), y(*be, std::vector<float>(static_cast<size_t>(m * 45)), 45);
      lin.run(*be, {&be->buffer_of(x.t, "x").gpu(), 0, 172}, {&be->buffer_of(y.t, "y").gpu(), 0, 45}, m, false);
      const std::vector<float> got = read_back(*be, y.t);
      std::vector<double> g(got.begin(), got.end()), want;
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < 45; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < 172; ++k) acc += w.value[j * 172 + k] * xh[r * 172 + k];
          want.push_back(acc);
        }
      CHECK(rel_err(g, want) <= 1e-5);
    }
}

TEST_CASE("GELU kernels against float64 over [-12, 12]: exact by erfc, and the tanh form (needs a Vulkan device)",
          "[kernels]") {
  // Two bounds. Everywhere, |error| <= 3e-7 |x|: gelu(x) = max(x, 0) - |x| erfc(|x| / sqrt2) / 2,
  // so this is the erfc approximation's own error (8.4e-8 in float64) and a few float roundings;
  // the tanh form in place of the exact one, or a wrong coefficient, is off by 1e-4 |x| or more.
  // In the negative tail, where gelu is tiny and all of it is the exp(), the relative error may
  // reach what Vulkan allows exp (3 + 2 |argument| ulp; llvmpipe comes close) plus that bound.
  SEMLINE_REQUIRE_VULKAN();
  auto be = make_backend();
  std::vector<float> xs;
  for (int i = -120000; i <= 120000; ++i) xs.push_back(static_cast<float>(i) * 1e-4f);
  DeviceRows buf(*be, xs, 1);
  const vk::GpuBuffer& gpu = be->buffer_of(buf.t, "x").gpu();
  struct Push {
    uint32_t off, n;
  } p{0, static_cast<uint32_t>(xs.size())};
  for (bool tanh_form : {false, true}) {
    INFO((tanh_form ? "tanh" : "erf"));
    be->copy_to_device(xs.data(), buf.t, xs.size() * 4, be->stream());
    be->dispatch(be->kernels().get(vk::ShaderId::Gelu, {256, tanh_form ? 1u : 0u}), {&gpu}, &p, sizeof p,
                 (xs.size() + 255) / 256);
    const std::vector<float> got = read_back(*be, buf.t);
    double worst_scaled = 0, worst_tail = 0;  // max |error| / |x|; in the tail, max error / its bound
    for (size_t i = 0; i < xs.size(); ++i) {
      const double x = xs[i];
      const double z = std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
      const double want = tanh_form ? 0.5 * x * (1 + std::tanh(z)) : 0.5 * x * std::erfc(-x / std::sqrt(2.0));
      const double err = std::fabs(got[i] - want);
      if (x != 0) worst_scaled = std::max(worst_scaled, err / std::fabs(x));
      if (x <= -1 && x >= -6) {
        const double arg = tanh_form ? 2 * std::fabs(z) : x * x / 2 + 1.3;  // |P(t)| < 1.3
        const double bound = (3 + 2 * arg) * std::ldexp(1.0, -23) + 3e-7;
        worst_tail = std::max(worst_tail, err / std::fabs(want) / bound);
      }
    }
    WARN((tanh_form ? "tanh" : "erf") << " GELU: max |error| / |x| " << worst_scaled
                                      << "; on [-6, -1] the largest relative error is " << worst_tail
                                      << " of what Vulkan's exp precision allows");
    CHECK(worst_scaled <= 3e-7);
    CHECK(worst_tail <= 1.0);
  }
}

TEST_CASE("a bias is added in both kernels' epilogue, overwriting or accumulating (needs a Vulkan device)",
          "[kernels]") {
  SEMLINE_REQUIRE_VULKAN();
  auto be = make_backend();
  for (DType dt : {DType::F32, DType::Q4_0})
    for (int64_t m : {1, 3, 70})
      for (bool accumulate : {false, true}) {
        INFO(dtype_name(dt) << ", " << m << " rows" << (accumulate ? ", accumulating" : ""));
        const Weight w = make_weight(dt, 96, 67, 0.5f);
        const std::vector<float> bias = random_floats(67 + 5);
        const Tensor bt = be->upload_weight(make_tensor(DType::F32, {67 + 5}, const_cast<float*>(bias.data())));
        // The bias starts 5 values into its buffer view, to catch a dropped offset.
        const vk::DevVector b{&be->buffer_of(bt, "bias").gpu(), static_cast<uint32_t>(bt.offset / 4 + 5)};
        const vk::Linear lin(*be, device_weight(*be, w), b);
        const std::vector<float> xh = random_floats(m * 96), yh = random_floats(m * 67);
        DeviceRows x(*be, xh, 96), y(*be, yh, 67);
        lin.run(*be, {&be->buffer_of(x.t, "x").gpu(), 0, 96}, {&be->buffer_of(y.t, "y").gpu(), 0, 67}, m, accumulate);
        const std::vector<float> got = read_back(*be, y.t);
        std::vector<double> g(got.begin(), got.end()), want;
        for (int64_t r = 0; r < m; ++r)
          for (int64_t j = 0; j < 67; ++j) {
            double acc = bias[5 + j] + (accumulate ? yh[r * 67 + j] : 0.0);
            for (int64_t k = 0; k < 96; ++k) acc += w.value[j * 96 + k] * xh[r * 96 + k];
            want.push_back(acc);
          }
        CHECK(rel_err(g, want) <= 1e-5);
      }
}
