// The linear-map kernels on their own: matrix-vector (up to 8 rows) and tiled matrix-matrix
// products for every weight dtype, odd shapes, overwrite and accumulate (each on both kernels), with subgroup and with
// shared-memory reductions, against float64 products of the exactly dequantised weights.
//
// Tolerance 1e-5 of the result's scale for every dtype: the kernels dequantise the stored weights
// exactly and multiply float activations, so only float rounding of the sums differs (about
// sqrt(n_in) * 6e-8 relative for these widths).
#include <catch2/catch.hpp>

#include "stages/linear.h"
#include "vulkan/vulkan_test_util.h"

using namespace semline;
using namespace semline::vktest;

namespace {

const DType kAllWeights[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

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
            std::vector<double> g, want;
            for (int64_t r = 0; r < m; ++r)
              for (int64_t j = 0; j < s.n_out; ++j) {
                double acc = 0;
                for (int64_t k = 0; k < s.n_in; ++k) acc += w.value[j * s.n_in + k] * xh[7 + r * xs + k];
                const size_t at = static_cast<size_t>(2 + r * ys + j);
                // Accumulating, the result is y + W x in float: compared whole, since subtracting
                // y back out would leave the rounding of a large y against a small W x (one
                // output of a 64-wide dot product can be 1e-2 of y).
                want.push_back(acc + (accumulate ? yh[at] : 0.0));
                g.push_back(static_cast<double>(got[at]));
              }
            CHECK(rel_err(g, want) <= 1e-5);
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
