// The cpu kernels of every instruction set this machine runs, each against a plain float64
// reference on fresh random inputs (the seed is printed; SEMLINE_TEST_SEED repeats a run).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <semline/codec.h>

#include "cpu/cpu_test_util.h"
#include "backend/cpu_backend.h"
#include "kernels/kernels.h"
#include "kernels/repack.h"

using namespace semline;
using namespace semline::cpu;
using namespace semline::cputest;

namespace {

// Rows of a cache as the attention core hands them to qk_row and pv: runs of rows one stride
// apart. Runs::whole takes n rows from base as one run; Runs::scattered copies them into a buffer
// of its own in runs of 1, 3, 2, 1, 3, ... rows laid out in the reverse order, with gaps between,
// as a sequence's blocks lie in a pool that many sequences share.
struct Runs {
  std::vector<char> copy;
  std::vector<const char*> first;
  std::vector<int32_t> len;
  size_t stride = 0;
  RowRuns view() const { return RowRuns{first.data(), len.data(), static_cast<int32_t>(first.size()), stride}; }

  static Runs whole(const void* base, int64_t n, size_t stride) {
    Runs r;
    r.first = {static_cast<const char*>(base)};
    r.len = {static_cast<int32_t>(n)};
    r.stride = stride;
    return r;
  }
  static Runs scattered(const void* base, int64_t n, size_t stride) {
    Runs r;
    r.stride = stride;
    for (int64_t j = 0, i = 0; j < n; ++i) {
      r.len.push_back(static_cast<int32_t>(std::min<int64_t>(n - j, 1 + (i * 2) % 3)));
      j += r.len.back();
    }
    const size_t gap = 3 * stride;
    r.copy.assign(static_cast<size_t>(n) * stride + r.len.size() * gap, 0x6b);
    size_t at = r.copy.size();
    const char* src = static_cast<const char*>(base);
    for (int32_t l : r.len) {  // the first run last in the buffer
      at -= static_cast<size_t>(l) * stride + gap;
      std::memcpy(r.copy.data() + at, src, static_cast<size_t>(l) * stride);
      src += static_cast<size_t>(l) * stride;
    }
    at = r.copy.size();
    for (int32_t l : r.len) {
      at -= static_cast<size_t>(l) * stride + gap;
      r.first.push_back(r.copy.data() + at);
    }
    return r;
  }
};

struct QStore {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> s;
  QRows rows;
  QStore(const Kernels& kern, const std::vector<float>& x, int64_t m, int64_t k, int64_t x_stride) {
    const int64_t qs = k + 32, bs = k / 32 + 1;  // padded rows: the kernels must honour the strides
    q.assign(static_cast<size_t>(m * qs), 0);
    d.assign(static_cast<size_t>(m * bs), 0);
    s.assign(static_cast<size_t>(m * bs), 0);
    rows = QRows{q.data(), d.data(), s.data(), qs, bs};
    for (int64_t r = 0; r < m; ++r)
      kern.quantize_q8(x.data() + r * x_stride, k, q.data() + r * qs, d.data() + r * bs, s.data() + r * bs);
  }
  double value(int64_t r, int64_t i) const {
    return static_cast<double>(d[r * rows.b_stride + i / 32]) * q[r * rows.q_stride + i];
  }
};

// A weight of n rows of k values as the kernels read it: the file's rows, or repacked (as a stage
// binds it) where the kernels have their own layout.
struct KernelWeight {
  AlignedBlock packed;
  const void* w;
  size_t stride;
  KernelWeight(const Kernels& kern, DType dt, const void* rows, size_t row_bytes, int64_t n, int64_t k)
      : w(rows), stride(row_bytes) {
    if (!kern.repacked(dt)) return;
    const int64_t tiles = (n + kRepackRows - 1) / kRepackRows;
    stride = repacked_tile_bytes(dt, k);
    packed = AlignedBlock(static_cast<size_t>(tiles) * stride);
    repack_tiles(dt, static_cast<const char*>(rows), row_bytes, n, k, 0, tiles, static_cast<char*>(packed.data()));
    w = packed.data();
  }
};

// y = W x over rows [j0, j1) of W, for m rows of x, checked element by element against float64,
// with each way of streaming the weights (Prefetch).
void check_gemm(Isa isa, DType dt, int64_t m, int64_t k, int64_t n, bool accumulate, int64_t j0, int64_t j1,
                Prefetch prefetch);

void check_gemm(Isa isa, DType dt, int64_t m, int64_t k, int64_t n, bool accumulate, int64_t j0, int64_t j1) {
  for (Prefetch p : {Prefetch::Software, Prefetch::Hardware}) check_gemm(isa, dt, m, k, n, accumulate, j0, j1, p);
}

void check_gemm(Isa isa, DType dt, int64_t m, int64_t k, int64_t n, bool accumulate, int64_t j0, int64_t j1,
                Prefetch prefetch) {
  const Kernels& kern = kernels_for(isa);
  INFO("isa " << isa_name(isa) << ", prefetch " << prefetch_name(prefetch) << ", W " << dtype_name(dt) << " [" << n
              << " x " << k << "], m " << m << ", rows [" << j0 << ", " << j1 << ")"
              << (accumulate ? ", accumulate" : ""));
  const Weight w = make_weight(dt, k, n, 0.5f);
  const int64_t xs = k + 3, ys = n + 2;  // strides wider than the rows
  const std::vector<float> x = random_floats(m * xs);
  std::vector<float> y = random_floats(m * ys);
  const std::vector<float> y0 = y;
  const bool quant = takes_quantized_input(dt);
  std::unique_ptr<QStore> xq;
  if (quant) xq = std::make_unique<QStore>(kern, x, m, k, xs);

  const KernelWeight kw(kern, dt, w.data(), w.row_bytes(), n, k);
  GemmArgs a;
  a.w = kw.w;
  a.w_stride = kw.stride;
  a.x = x.data();
  a.x_stride = xs;
  a.xq = quant ? &xq->rows : nullptr;
  a.m = m;
  a.k = k;
  a.j0 = j0;
  a.j1 = j1;
  a.y = y.data();
  a.y_stride = ys;
  a.accumulate = accumulate;
  a.prefetch = prefetch;
  kern.gemm(dt)(a);

  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < ys; ++j) {
      const size_t at = static_cast<size_t>(r * ys + j);
      if (j < j0 || j >= j1) {
        REQUIRE(y[at] == y0[at]);  // rows outside the range and the padding stay untouched
        continue;
      }
      const double got = y[at] - (accumulate ? static_cast<double>(y0[at]) : 0.0);
      double exact = 0, scale = 0, plain = 0, plain_scale = 0, quant_bound = 0;
      for (int64_t i = 0; i < k; ++i) {
        const double wv = w.value[j * k + i], xv = x[r * xs + i];
        const double xe = quant ? xq->value(r, i) : xv;
        exact += wv * xe;
        scale += std::fabs(wv * xe);
        if (quant) {
          plain += wv * xv;
          // |x - d q| <= d / 2 for each activation value
          quant_bound += std::fabs(wv) * xq->d[r * xq->rows.b_stride + i / 32] * 0.5;
        } else {
          plain += w.original[j * k + i] * xv;
          plain_scale += std::fabs(w.original[j * k + i] * xv);
        }
      }
      // The result's scale includes the value accumulated onto, whose float addition rounds too.
      if (accumulate) scale += std::fabs(y0[at]), plain_scale += std::fabs(y0[at]);
      // Against the weights as stored (and, for Q8_0/Q4_0, the activation as quantised):
      // rounding of float accumulation only.
      REQUIRE(std::fabs(got - exact) <= 1e-5 * scale + 1e-30);
      if (quant) {
        // Against the activation before quantisation: at most its rounding, d / 2 per value.
        REQUIRE(std::fabs(got - plain) <= quant_bound * (1 + 1e-4) + 1e-5 * scale + 1e-30);
      } else if (dt == DType::F16) {
        REQUIRE(std::fabs(got - plain) <= 2e-3 * plain_scale + 1e-30);
      } else if (dt == DType::BF16) {
        REQUIRE(std::fabs(got - plain) <= 8e-3 * plain_scale + 1e-30);
      }
    }
  }
}

}  // namespace

TEST_CASE("float-weight linear maps match float64 at odd sizes", "[kernels]") {
  struct Case {
    int64_t m, k, n;
  };
  const Case cases[] = {{1, 1, 1},   {1, 15, 3},  {1, 16, 4},   {1, 17, 5},    {2, 37, 9},   {3, 100, 13},
                        {5, 129, 17}, {7, 64, 33}, {1, 2048, 7}, {33, 50, 11}, {70, 2048, 3},
                        {8, 1, 3},    {9, 37, 20}, {12, 300, 17}};
  for (Isa isa : runnable_isas())
    for (DType dt : {DType::F32, DType::F16, DType::BF16})
      for (const Case& c : cases) {
        check_gemm(isa, dt, c.m, c.k, c.n, false, 0, c.n);
        check_gemm(isa, dt, c.m, c.k, c.n, true, c.n > 4 ? 2 : 0, c.n > 4 ? c.n - 1 : c.n);
      }
}

TEST_CASE("Q8_0 and Q4_0 linear maps match float64 with the activation quantised", "[kernels]") {
  struct Case {
    int64_t m, k, n;
  };
  const Case cases[] = {{1, 32, 1},   {1, 64, 5},  {2, 96, 3},   {3, 160, 13},  {5, 288, 17},
                        {7, 64, 33},  {1, 2048, 9}, {33, 96, 11}, {261, 2048, 3}, {9, 1088, 37}, {16, 160, 16}, {16, 64, 172}};
  for (Isa isa : runnable_isas())
    for (DType dt : {DType::Q8_0, DType::Q4_0})
      for (const Case& c : cases) {
        check_gemm(isa, dt, c.m, c.k, c.n, false, 0, c.n);
        check_gemm(isa, dt, c.m, c.k, c.n, true, c.n > 4 ? 3 : 0, c.n > 4 ? c.n - 2 : c.n);
      }
}

TEST_CASE("Q8_0 and Q4_0 linear maps over partial tiles, one block or many, 1 to 70 rows", "[kernels]") {
  // Row counts off the 16-row tiles of the repacked layout (1, 67, 130: a lone row, partial last
  // tiles, 4 + 1 and 2 x 4 + 1 tiles side by side), k of one block and of 33 (odd: a pair of one;
  // more than one k-chunk of the many-rows path), every m to 70, and row ranges that begin and end
  // inside a tile.
  for (Isa isa : runnable_isas())
    for (DType dt : {DType::Q8_0, DType::Q4_0}) {
      for (int64_t m = 1; m <= 70; ++m) {
        const bool part = m % 3 == 0;
        check_gemm(isa, dt, m, 32, 67, m % 2 == 0, part ? 5 : 0, part ? 61 : 67);
      }
      for (int64_t n : {1, 67, 130})
        for (int64_t k : {32, 1056})
          for (int64_t m : {1, 2, 3, 5, 8, 9, 23}) {
            if (m % 2) check_gemm(isa, dt, m, k, n, false, 0, n);
            else check_gemm(isa, dt, m, k, n, true, n > 20 ? 17 : 0, n > 20 ? n - 3 : n);
          }
    }
}

TEST_CASE("the AMX linear maps give the AVX-512 ones' floats exactly", "[kernels]") {
  // The same integer block sums, scaled and added in the same order (kernels/amx.cpp): a line
  // gives the same logits on either, whatever rounding its activations' quantisation meets.
  if (!isa_supported(Isa::Amx)) {
    WARN("not checked: this CPU has no AMX-INT8 (or the kernel grants no tile state)");
    return;
  }
  struct Case {
    int64_t m, k, n, j0, j1;
    bool accumulate;
  };
  // Row counts below, at and above 16-row passes, one k-chunk and several (with an odd block).
  const Case cases[] = {{8, 64, 64, 0, 64, false},      {16, 64, 172, 5, 170, true}, {17, 1056, 67, 0, 67, false},
                        {32, 2048, 48, 16, 48, true},  {45, 1088, 33, 1, 33, false}, {70, 32, 130, 0, 130, true}};
  for (DType dt : {DType::Q8_0, DType::Q4_0})
    for (const Case& c : cases) {
      INFO(dtype_name(dt) << " [" << c.n << " x " << c.k << "], m " << c.m << ", rows [" << c.j0 << ", " << c.j1 << ")");
      const Weight w = make_weight(dt, c.k, c.n, 0.5f);
      const std::vector<float> x = random_floats(c.m * c.k), y0 = random_floats(c.m * c.n);
      std::vector<float> got[2];
      int i = 0;
      for (Isa isa : {Isa::Avx512, Isa::Amx}) {
        const Kernels& kern = kernels_for(isa);
        const QStore xq(kern, x, c.m, c.k, c.k);
        const KernelWeight kw(kern, dt, w.data(), w.row_bytes(), c.n, c.k);
        got[i] = y0;
        GemmArgs a;
        a.w = kw.w;
        a.w_stride = kw.stride;
        a.xq = &xq.rows;
        a.m = c.m;
        a.k = c.k;
        a.j0 = c.j0;
        a.j1 = c.j1;
        a.y = got[i].data();
        a.y_stride = c.n;
        a.accumulate = c.accumulate;
        kern.gemm(dt)(a);
        ++i;
      }
      REQUIRE(std::memcmp(got[0].data(), got[1].data(), got[0].size() * sizeof(float)) == 0);
    }
}

TEST_CASE("repacked Q8_0 and Q4_0 tiles hold the file's blocks, every byte written", "[kernels]") {
  // An independent reading of the layout of kernels/repack.h: tile t, pair p = b / 2 at
  // t * tile + p * (64 + 2 * 16 * qb); scales of block b at +32 (b % 2), row l's 2 bytes at +2 l;
  // quants at +64 + (b % 2) * 16 * qb, group g at +64 g, row l's 4 bytes at +4 l.
  for (DType dt : {DType::Q8_0, DType::Q4_0})
    for (int64_t n : {1, 16, 67})
      for (int64_t k : {32, 96, 128}) {
        INFO(dtype_name(dt) << " [" << n << " x " << k << "]");
        const Weight w = make_weight(dt, k, n, 0.5f);
        const int64_t nb = k / 32, tiles = (n + 15) / 16;
        const size_t bb = static_cast<size_t>(dtype_block_bytes(dt)), qb = bb - 2;
        const size_t tile = repacked_tile_bytes(dt, k);
        REQUIRE(tile == static_cast<size_t>(16 * nb) * bb + (nb % 2 ? 32 : 0));  // the file's bytes, + 32 for an odd pair
        std::vector<uint8_t> got(static_cast<size_t>(tiles) * tile + 64, 0x5a), split = got;
        repack_tiles(dt, static_cast<const char*>(w.data()), w.row_bytes(), n, k, 0, tiles, reinterpret_cast<char*>(got.data()));
        // Tiles made in two calls (as two workers make them) are the same bytes.
        repack_tiles(dt, static_cast<const char*>(w.data()), w.row_bytes(), n, k, 0, tiles / 2, reinterpret_cast<char*>(split.data()));
        repack_tiles(dt, static_cast<const char*>(w.data()), w.row_bytes(), n, k, tiles / 2, tiles, reinterpret_cast<char*>(split.data()));
        REQUIRE(split == got);
        std::vector<bool> seen(got.size(), false);
        const auto at = [&](size_t i) {
          REQUIRE(i < static_cast<size_t>(tiles) * tile);
          REQUIRE_FALSE(seen[i]);
          seen[i] = true;
          return got[i];
        };
        const auto* file = reinterpret_cast<const uint8_t*>(w.data());
        for (int64_t t = 0; t < tiles; ++t)
          for (int64_t b = 0; b < nb; ++b) {
            const size_t pair = static_cast<size_t>(t) * tile + static_cast<size_t>(b / 2) * (64 + 32 * qb);
            const size_t scales = pair + 32 * static_cast<size_t>(b % 2), quants = pair + 64 + static_cast<size_t>(b % 2) * 16 * qb;
            if (b == nb - 1 && nb % 2)
              for (size_t i = 32; i < 64; ++i) REQUIRE(at(pair + i) == 0);
            for (int64_t l = 0; l < 16; ++l) {
              const int64_t row = 16 * t + l;
              const uint8_t* blk = file + static_cast<size_t>(row) * w.row_bytes() + static_cast<size_t>(b) * bb;
              for (size_t i = 0; i < 2; ++i) REQUIRE(at(scales + 2 * static_cast<size_t>(l) + i) == (row < n ? blk[i] : 0));
              for (size_t i = 0; i < qb; ++i) {
                const uint8_t v = at(quants + 64 * (i / 4) + 4 * static_cast<size_t>(l) + i % 4);
                if (row >= n) REQUIRE(v == 0);  // padding rows
                else if (dt == DType::Q8_0) REQUIRE(static_cast<uint8_t>(v ^ 0x80) == blk[2 + i]);  // stored + 128
                else REQUIRE(v == blk[2 + i]);  // both nibbles as the file packs them
              }
            }
          }
        REQUIRE(std::count(seen.begin(), seen.end(), true) == static_cast<std::ptrdiff_t>(tiles * tile));
        for (size_t i = static_cast<size_t>(tiles) * tile; i < got.size(); ++i) REQUIRE(got[i] == 0x5a);  // nothing past
      }
  REQUIRE_THROWS_WITH(repack_tiles(DType::F16, nullptr, 0, 1, 32, 0, 1, nullptr),
                      Catch::Contains("F16 weights are not repacked"));
}

TEST_CASE("Q8_0 weights with the value -128 are read as -128", "[kernels]") {
  // The quantiser never writes -128, but a file may hold it; the unsigned-offset tricks must not
  // overflow on it.
  for (Isa isa : runnable_isas()) {
    INFO("isa " << isa_name(isa));
    const Kernels& kern = kernels_for(isa);
    std::vector<BlockQ8_0> w(2);
    for (auto& b : w) {
      b.d = f32_to_f16(0.5f);
      for (int i = 0; i < 32; ++i) b.qs[i] = static_cast<int8_t>(i % 2 ? -128 : 127);
    }
    std::vector<float> x(64, 1.0f);
    x[3] = -1.0f;
    QStore xq(kern, x, 1, 64, 64);
    float y = 0;
    const KernelWeight kw(kern, DType::Q8_0, w.data(), 2 * sizeof(BlockQ8_0), 1, 64);
    GemmArgs a;
    a.w = kw.w;
    a.w_stride = kw.stride;
    a.xq = &xq.rows;
    a.m = 1;
    a.k = 64;
    a.j0 = 0;
    a.j1 = 1;
    a.y = &y;
    a.y_stride = 1;
    kern.gemm_q8_0(a);
    double exact = 0;
    for (int i = 0; i < 64; ++i) exact += 0.5 * (i % 2 ? -128 : 127) * xq.value(0, i);
    REQUIRE(y == Approx(exact).epsilon(1e-6));
  }
}

TEST_CASE("activation quantisation follows the Q8_0 rule", "[kernels]") {
  for (Isa isa : runnable_isas()) {
    INFO("isa " << isa_name(isa));
    const Kernels& kern = kernels_for(isa);
    for (int64_t n : {32, 64, 96, 2048}) {
      std::vector<float> x = random_floats(n, 3.0f);
      for (int i = 0; i < 32; ++i) x[i] = 0.0f;  // an all-zero block
      std::vector<int8_t> q(static_cast<size_t>(n));
      std::vector<float> d(static_cast<size_t>(n / 32));
      std::vector<int32_t> s(static_cast<size_t>(n / 32));
      kern.quantize_q8(x.data(), n, q.data(), d.data(), s.data());
      for (int64_t b = 0; b < n / 32; ++b) {
        float amax = 0;
        int32_t sum = 0;
        for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[32 * b + i]));
        REQUIRE(d[b] == amax / 127.0f);
        for (int i = 0; i < 32; ++i) {
          const int8_t qi = q[32 * b + i];
          sum += qi;
          REQUIRE(qi >= -127);
          if (d[b] == 0) REQUIRE(qi == 0);
          else REQUIRE(std::fabs(qi - x[32 * b + i] / d[b]) <= 0.5 + 1e-4);
        }
        REQUIRE(s[b] == sum);
      }
    }
  }
}

TEST_CASE("rms_norm, softmax and silu_mul match float64", "[kernels]") {
  for (Isa isa : runnable_isas()) {
    INFO("isa " << isa_name(isa));
    const Kernels& kern = kernels_for(isa);
    for (int64_t n : {1, 5, 16, 17, 100, 768, 1001}) {
      INFO("n " << n);
      const std::vector<float> x = random_floats(n, 2.0f), w = random_floats(n);
      std::vector<float> y(static_cast<size_t>(n) + 1, 123.0f);  // one guard value past the end
      kern.rms_norm(x.data(), w.data(), y.data(), n, 1e-5f);
      double ss = 0;
      for (float v : x) ss += static_cast<double>(v) * v;
      const double r = 1.0 / std::sqrt(ss / n + 1e-5);
      std::vector<double> ref(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) ref[i] = x[i] * r * w[i];
      REQUIRE(rel_err(to_double(y.data(), n), ref) <= 1e-5);
      REQUIRE(y[n] == 123.0f);

      // Scores spread over a wide range, as attention produces them.
      std::vector<float> s = random_floats(n, 8.0f);
      s.push_back(123.0f);
      std::vector<double> e(static_cast<size_t>(n));
      double mx = -INFINITY, sum = 0;
      for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, s[i]);
      for (int64_t i = 0; i < n; ++i) sum += e[i] = std::exp(static_cast<double>(s[i]) - mx);
      for (double& v : e) v /= sum;
      kern.softmax(s.data(), n);
      for (int64_t i = 0; i < n; ++i) REQUIRE(std::fabs(s[i] - e[i]) <= 1e-5 * e[i] + 1e-12);
      REQUIRE(s[n] == 123.0f);

      const std::vector<float> g = random_floats(n, 4.0f), u = random_floats(n);
      std::vector<float> h(static_cast<size_t>(n) + 1, 123.0f);
      kern.silu_mul(g.data(), u.data(), h.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double want = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
        REQUIRE(std::fabs(h[i] - want) <= 1e-5 * std::fabs(want) + 1e-12);
      }
      REQUIRE(h[n] == 123.0f);
    }
  }
}

TEST_CASE("layer_norm, gelu, gelu_tanh and add match float64", "[kernels]") {
  // GELU's tolerance: 1e-5 of |gelu(x)|, and 1e-30 absolute for the far negative tail, where the
  // exponential is clamped (there gelu(x) is below 1e-30 itself).
  const auto near = [](double got, double want) { return std::fabs(got - want) <= 1e-5 * std::fabs(want) + 1e-30; };
  for (Isa isa : runnable_isas()) {
    INFO("isa " << isa_name(isa));
    const Kernels& kern = kernels_for(isa);
    for (int64_t n : {1, 5, 16, 17, 100, 768, 1001}) {
      INFO("n " << n);
      // A mean far from zero next to the spread: the variance must not come from sum(x^2) - n mean^2.
      std::vector<float> x = random_floats(n, 2.0f);
      for (float& v : x) v += 30.0f;
      const std::vector<float> w = random_floats(n), b = random_floats(n);
      std::vector<float> y(static_cast<size_t>(n) + 1, 123.0f);
      kern.layer_norm(x.data(), w.data(), b.data(), y.data(), n, 1e-5f);
      double mean = 0, var = 0;
      for (float v : x) mean += v;
      mean /= n;
      for (float v : x) var += (v - mean) * (v - mean);
      const double r = 1.0 / std::sqrt(var / n + 1e-5);
      std::vector<double> ref(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) ref[i] = (x[i] - mean) * r * w[i] + b[i];
      REQUIRE(rel_err(to_double(y.data(), n), ref) <= 1e-5);
      REQUIRE(y[n] == 123.0f);

      // Inputs over the whole range the activations see, both tails included.
      std::vector<float> g = random_floats(n, 4.0f);
      for (int64_t i = 0; i < n && i < 8; ++i) g[i] = -20.0f + 5.0f * static_cast<float>(i);
      std::vector<float> h(static_cast<size_t>(n) + 1, 123.0f), ht(static_cast<size_t>(n) + 1, 123.0f);
      kern.gelu(g.data(), h.data(), n);
      kern.gelu_tanh(g.data(), ht.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        INFO("x " << g[i]);
        const double xv = g[i];
        REQUIRE(near(h[i], 0.5 * xv * std::erfc(-xv / std::sqrt(2.0))));
        // 0.5 x (1 + tanh(z)) = x / (1 + exp(-2z)): the same function, without the cancellation
        // of 1 + tanh(z) that would leave the reference itself no digits in the negative tail.
        const double z = std::sqrt(2.0 / M_PI) * (xv + 0.044715 * xv * xv * xv);
        REQUIRE(near(ht[i], xv / (1.0 + std::exp(-2.0 * z))));
        if (std::fabs(z) < 5) REQUIRE(near(ht[i], 0.5 * xv * (1.0 + std::tanh(z))));
      }
      REQUIRE(h[n] == 123.0f);
      REQUIRE(ht[n] == 123.0f);
      std::vector<float> in_place = g;
      kern.gelu(in_place.data(), in_place.data(), n);
      for (int64_t i = 0; i < n; ++i) REQUIRE(in_place[i] == h[i]);

      std::vector<float> acc = w;
      acc.push_back(123.0f);
      kern.add(b.data(), acc.data(), n);
      for (int64_t i = 0; i < n; ++i) REQUIRE(acc[i] == w[i] + b[i]);
      REQUIRE(acc[n] == 123.0f);
    }
  }
}

TEST_CASE("exp_sum, max, scale, dot and axpy match float64", "[kernels]") {
  for (Isa isa : runnable_isas()) {
    INFO("isa " << isa_name(isa));
    const Kernels& kern = kernels_for(isa);
    for (int64_t n : {1, 7, 16, 33, 64, 257}) {
      INFO("n " << n);
      const std::vector<float> a = random_floats(n), b = random_floats(n);
      std::vector<uint16_t> ah(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) ah[i] = f32_to_f16(a[i]);
      double d32 = 0, d16 = 0, scale32 = 0, scale16 = 0;
      for (int64_t i = 0; i < n; ++i) {
        d32 += static_cast<double>(a[i]) * b[i];
        scale32 += std::fabs(static_cast<double>(a[i]) * b[i]);
        d16 += static_cast<double>(f16_to_f32(ah[i])) * b[i];
        scale16 += std::fabs(static_cast<double>(f16_to_f32(ah[i])) * b[i]);
      }
      REQUIRE(std::fabs(kern.dot_f32(a.data(), b.data(), n) - d32) <= 1e-5 * scale32);
      REQUIRE(std::fabs(kern.dot_f16(ah.data(), b.data(), n) - d16) <= 1e-5 * scale16);

      std::vector<float> y = b, y16 = b;
      kern.axpy_f32(0.75f, a.data(), y.data(), n);
      kern.axpy_f16(0.75f, ah.data(), y16.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        REQUIRE(y[i] == Approx(0.75 * a[i] + b[i]).margin(1e-6));
        REQUIRE(y16[i] == Approx(0.75 * f16_to_f32(ah[i]) + b[i]).margin(1e-6));
      }
      std::vector<float> z = a;
      kern.scale(z.data(), -1.5f, n);
      for (int64_t i = 0; i < n; ++i) REQUIRE(z[i] == -1.5f * a[i]);

      float mx = a[0];
      for (float v : a) mx = std::fmax(mx, v);
      REQUIRE(kern.max(a.data(), n) == mx);

      std::vector<float> e = a;
      const float sum = kern.exp_sum(e.data(), n, mx);
      double want = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double ei = std::exp(static_cast<double>(a[i]) - mx);
        want += ei;
        REQUIRE(std::fabs(e[i] - ei) <= 1e-6 * ei);
      }
      REQUIRE(std::fabs(sum - want) <= 1e-6 * want);
    }
  }
}

TEST_CASE("rope rotates interleaved (normal) and split (neox) pairs of the first rope_dim dims", "[kernels]") {
  const int64_t hd = 16, heads = 3;
  for (Isa isa : runnable_isas()) {
    const Kernels& kern = kernels_for(isa);
    for (RopeType type : {RopeType::Normal, RopeType::NeoX})
      for (int64_t rope_dim : {16, 10})
        for (int32_t pos : {0, 1, 7, 5000}) {
          INFO("isa " << isa_name(isa) << ", type " << static_cast<int>(type) << ", rope_dim " << rope_dim
                      << ", pos " << pos);
          const std::vector<float> x = random_floats(heads * hd);
          std::vector<double> theta(static_cast<size_t>(rope_dim / 2));
          std::vector<float> cs(static_cast<size_t>(rope_dim));
          for (int64_t i = 0; i < rope_dim / 2; ++i) {
            theta[i] = pos * std::pow(10000.0, -2.0 * i / rope_dim);
            cs[2 * i] = static_cast<float>(std::cos(theta[i]));
            cs[2 * i + 1] = static_cast<float>(std::sin(theta[i]));
          }
          std::vector<float> y = x;
          kern.rope(y.data(), heads, hd, rope_dim, cs.data(), type);
          std::vector<double> ref(x.begin(), x.end());
          for (int64_t h = 0; h < heads; ++h)
            for (int64_t i = 0; i < rope_dim / 2; ++i) {
              const int64_t a = type == RopeType::NeoX ? i : 2 * i;
              const int64_t b = type == RopeType::NeoX ? i + rope_dim / 2 : 2 * i + 1;
              const double x0 = x[h * hd + a], x1 = x[h * hd + b];
              ref[h * hd + a] = x0 * std::cos(theta[i]) - x1 * std::sin(theta[i]);
              ref[h * hd + b] = x0 * std::sin(theta[i]) + x1 * std::cos(theta[i]);
            }
          for (size_t i = 0; i < ref.size(); ++i) REQUIRE(std::fabs(y[i] - ref[i]) <= 1e-5 * (std::fabs(ref[i]) + 1));
        }
  }
}

TEST_CASE("dequantize_row and to_f16 agree with the SDK codecs exactly", "[kernels]") {
  for (Isa isa : runnable_isas()) {
    INFO("isa " << isa_name(isa));
    const Kernels& kern = kernels_for(isa);
    for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0})
      for (int64_t n : {32, 96, 2048}) {
        INFO(dtype_name(dt) << " n " << n);
        const Weight w = make_weight(dt, n, 1, 1.0f);
        std::vector<float> y(static_cast<size_t>(n) + 1, 123.0f);
        kern.dequantize_row(dt, w.data(), y.data(), n);
        for (int64_t i = 0; i < n; ++i) REQUIRE(y[i] == static_cast<float>(w.value[i]));
        REQUIRE(y[n] == 123.0f);
      }
    for (int64_t n : {1, 9, 16, 37}) {
      const std::vector<float> x = random_floats(n, 100.0f);
      std::vector<uint16_t> h(static_cast<size_t>(n) + 1, 0xbeef);
      kern.to_f16(x.data(), h.data(), n);
      for (int64_t i = 0; i < n; ++i) REQUIRE(h[i] == f32_to_f16(x[i]));
      REQUIRE(h[n] == 0xbeef);
    }
  }
}

TEST_CASE("pv accumulates probability-weighted value rows over each row's causal keys, the rows whole or in scattered runs", "[kernels]") {
  for (Isa isa : runnable_isas()) {
    const Kernels& kern = kernels_for(isa);
    for (int64_t hd : {8, 13, 64, 200})
      for (bool f16 : {false, true}) {
        INFO("isa " << isa_name(isa) << ", hd " << hd << (f16 ? ", f16" : ", f32"));
        const int64_t rows = 5, keys = 9, vs = hd + 3;  // value rows with a wider stride
        const std::vector<float> p = random_floats(rows * keys);
        const std::vector<float> vf = random_floats(keys * vs);
        std::vector<uint16_t> vh(vf.size());
        for (size_t i = 0; i < vf.size(); ++i) vh[i] = f32_to_f16(vf[i]);
        const int32_t nv[rows] = {9, 0, 1, 5, 8};
        std::vector<float> o = random_floats(rows * hd);
        const std::vector<float> o0 = o;
        const Runs whole = f16 ? Runs::whole(vh.data(), keys, vs * 2) : Runs::whole(vf.data(), keys, vs * 4);
        const Runs scattered = Runs::scattered(whole.first[0], keys, whole.stride);
        const Kernels::PvFn pv = f16 ? kern.pv_f16 : kern.pv_f32;
        std::vector<float> o_runs = o;
        pv(p.data(), keys, nv, rows, whole.view(), hd, o.data(), hd);
        pv(p.data(), keys, nv, rows, scattered.view(), hd, o_runs.data(), hd);
        REQUIRE(o_runs == o);  // the same sums in the same order, wherever the rows lie
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t d = 0; d < hd; ++d) {
            double want = o0[r * hd + d], scale = std::fabs(want);
            for (int32_t j = 0; j < nv[r]; ++j) {
              const double v = f16 ? f16_to_f32(vh[j * vs + d]) : vf[j * vs + d];
              want += p[r * keys + j] * v;
              scale += std::fabs(p[r * keys + j] * v);
            }
            REQUIRE(std::fabs(o[r * hd + d] - want) <= 1e-5 * scale);
          }
      }
  }
}

TEST_CASE("the Q8_0 KV cache kernels: to_q8_0 writes ggml's blocks, gemm, dot, axpy and pv read them", "[kernels]") {
  for (Isa isa : runnable_isas()) {
    INFO("isa " << isa_name(isa));
    const Kernels& kern = kernels_for(isa);
    for (int64_t hd : {32, 96, 256}) {
      INFO("hd " << hd);
      const int64_t rows = 7, row_bytes = hd / 32 * 34, stride = row_bytes + 6;  // rows with a wider stride
      std::vector<float> x = random_floats(rows * hd, 3.0f);
      std::fill(x.begin() + hd, x.begin() + hd + 32, 0.0f);  // a block of zeros: d = 0
      std::vector<char> v(static_cast<size_t>(rows * stride), 0x5a);
      for (int64_t r = 0; r < rows; ++r) kern.to_q8_0(x.data() + r * hd, v.data() + r * stride, hd);
      // ggml's blocks: the SDK codec's (which rounds halves away from zero, the kernels to even:
      // a value exactly between two steps may differ by one).
      std::vector<double> deq(static_cast<size_t>(rows * hd));
      for (int64_t r = 0; r < rows; ++r) {
        REQUIRE(v[r * stride + row_bytes] == 0x5a);  // nothing past the row
        std::vector<BlockQ8_0> want(static_cast<size_t>(hd / 32));
        quantize_row(DType::Q8_0, x.data() + r * hd, want.data(), hd);
        for (int64_t b = 0; b < hd / 32; ++b) {
          BlockQ8_0 got;
          std::memcpy(&got, v.data() + r * stride + b * 34, 34);
          REQUIRE(got.d == want[b].d);
          const float d = f16_to_f32(got.d);
          // Both round x times the inverse of the scale before its F16 rounding.
          float amax = 0;
          for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[r * hd + b * 32 + i]));
          const float id = amax > 0 ? 1.0f / (amax / 127.0f) : 0.0f;
          for (int i = 0; i < 32; ++i) {
            const float t = x[r * hd + b * 32 + i] * id;
            const int diff = got.qs[i] - want[b].qs[i];
            REQUIRE(std::abs(diff) <= 1);
            if (diff != 0) REQUIRE(std::fabs(std::fabs(t - std::trunc(t)) - 0.5) < 1e-3);  // a tie
            deq[r * hd + b * 32 + i] = static_cast<double>(d) * got.qs[i];
          }
        }
      }
      const std::vector<float> q = random_floats(3 * hd);
      // gemm over the rows: y[m][j] = sum_i row_j[i] q[m][i]
      std::vector<float> y(3 * rows, 0.0f);
      GemmArgs a;
      a.w = v.data();
      a.w_stride = static_cast<size_t>(stride);
      a.x = q.data();
      a.x_stride = hd;
      a.m = 3;
      a.k = hd;
      a.j0 = 0;
      a.j1 = rows;
      a.y = y.data();
      a.y_stride = rows;
      kern.gemm_q8_0_rows(a);
      for (int64_t m = 0; m < 3; ++m)
        for (int64_t j = 0; j < rows; ++j) {
          double want = 0, scale = 0;
          for (int64_t i = 0; i < hd; ++i) {
            want += deq[j * hd + i] * q[m * hd + i];
            scale += std::fabs(deq[j * hd + i] * q[m * hd + i]);
          }
          REQUIRE(std::fabs(y[m * rows + j] - want) <= 1e-5 * scale + 1e-30);
          if (m == 0) REQUIRE(std::fabs(kern.dot_q8_0(v.data() + j * stride, q.data(), hd) - want) <= 1e-5 * scale + 1e-30);
        }
      std::vector<float> acc = q;
      kern.axpy_q8_0(0.75f, v.data() + 2 * stride, acc.data(), hd);
      for (int64_t i = 0; i < hd; ++i) REQUIRE(acc[i] == Approx(0.75 * deq[2 * hd + i] + q[i]).margin(1e-5));
      // pv: o[r] += sum_{j < nv[r]} p[r][j] row_j
      const int64_t pr = 4;
      const std::vector<float> p = random_floats(pr * rows);
      const int32_t nv[pr] = {7, 0, 1, 5};
      std::vector<float> o = random_floats(pr * hd);
      const std::vector<float> o0 = o;
      std::vector<float> o_runs = o;
      kern.pv_q8_0(p.data(), rows, nv, pr, Runs::whole(v.data(), rows, static_cast<size_t>(stride)).view(), hd, o.data(), hd);
      const Runs scattered = Runs::scattered(v.data(), rows, static_cast<size_t>(stride));
      kern.pv_q8_0(p.data(), rows, nv, pr, scattered.view(), hd, o_runs.data(), hd);
      REQUIRE(o_runs == o);
      for (int64_t r = 0; r < pr; ++r)
        for (int64_t d = 0; d < hd; ++d) {
          double want = o0[r * hd + d], scale = std::fabs(want);
          for (int32_t j = 0; j < nv[r]; ++j) {
            want += p[r * rows + j] * deq[j * hd + d];
            scale += std::fabs(p[r * rows + j] * deq[j * hd + d]);
          }
          REQUIRE(std::fabs(o[r * hd + d] - want) <= 1e-5 * scale);
        }
    }
  }
}

TEST_CASE("qk_row scores one query row against F32, F16 and Q8_0 keys (an 8-bit query) as float64 does, whole or in runs", "[kernels]") {
  for (Isa isa : runnable_isas()) {
    INFO("isa " << isa_name(isa));
    const Kernels& kern = kernels_for(isa);
    // Each head size both ways somewhere: 40 in AVX2's registers (5 vectors) but a dot product per
    // key on AVX-512; 256 in AVX-512's registers (16) but per key on AVX2; 32 to 128 in registers
    // on both; the scalar set and Q8_0 rows of 40 never in registers.
    for (int64_t hd : {32, 40, 64, 96, 128, 192, 256}) {
      for (int64_t n : {1, 3, 4, 7, 16}) {  // whole groups of four keys and the rest
        INFO("hd " << hd << ", n " << n);
        const int64_t stride = hd * 4 + 20;  // bytes between rows, wider than any row
        const std::vector<float> q = random_floats(hd), x = random_floats(n * hd, 2.0f);
        std::vector<char> f32(static_cast<size_t>(n * stride)), f16(f32.size()), q8(f32.size());
        std::vector<double> deq8(static_cast<size_t>(n * hd)), deq16(deq8.size());
        for (int64_t j = 0; j < n; ++j) {
          std::memcpy(f32.data() + j * stride, x.data() + j * hd, static_cast<size_t>(hd) * 4);
          for (int64_t i = 0; i < hd; ++i) {
            const uint16_t h = f32_to_f16(x[j * hd + i]);
            std::memcpy(f16.data() + j * stride + i * 2, &h, 2);
            deq16[j * hd + i] = f16_to_f32(h);
          }
          if (hd % 32 != 0) continue;
          kern.to_q8_0(x.data() + j * hd, q8.data() + j * stride, hd);
          for (int64_t b = 0; b < hd / 32; ++b) {
            BlockQ8_0 blk;
            std::memcpy(&blk, q8.data() + j * stride + b * 34, 34);
            for (int i = 0; i < 32; ++i) deq8[j * hd + b * 32 + i] = static_cast<double>(f16_to_f32(blk.d)) * blk.qs[i];
          }
        }
        // Q8_0 keys meet the query rounded to 8 bits per block of 32 (d = max / 127), in float64
        // here; a zero block stays zero.
        std::vector<float> q_zero_block = q;
        std::vector<double> q8q(static_cast<size_t>(hd));
        if (hd % 32 == 0) {
          std::fill(q_zero_block.begin(), q_zero_block.begin() + 32, 0.0f);
          for (int64_t b = 0; b < hd; b += 32) {
            float amax = 0;
            for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(q[i]));
            const float d = amax / 127.0f;
            for (int64_t i = b; i < b + 32; ++i) q8q[i] = static_cast<double>(d) * std::nearbyint(q[i] / d);
          }
        }
        auto check = [&](Kernels::QkRowFn fn, const std::vector<char>& keys, auto value, const float* qin,
                         auto qval) {
          std::vector<float> s(static_cast<size_t>(n) + 1, -7.0f), s_runs = s;
          fn(qin, Runs::whole(keys.data(), n, static_cast<size_t>(stride)).view(), hd, s.data());
          REQUIRE(s[static_cast<size_t>(n)] == -7.0f);  // nothing past the n scores
          // The same keys in runs of 1 to 3 scattered over memory: the same scores, bit for bit
          // (a sequence's blocks lie differently alone and among others).
          fn(qin, Runs::scattered(keys.data(), n, static_cast<size_t>(stride)).view(), hd, s_runs.data());
          REQUIRE(s_runs == s);
          for (int64_t j = 0; j < n; ++j) {
            double want = 0, scale = 0;
            for (int64_t i = 0; i < hd; ++i) {
              want += value(j * hd + i) * qval(i);
              scale += std::fabs(value(j * hd + i) * qval(i));
            }
            REQUIRE(std::fabs(s[j] - want) <= 1e-5 * scale);
          }
        };
        auto as_is = [&](int64_t i) { return static_cast<double>(q[i]); };
        check(kern.qk_row(DType::F32), f32, [&](int64_t i) { return static_cast<double>(x[i]); }, q.data(), as_is);
        check(kern.qk_row(DType::F16), f16, [&](int64_t i) { return deq16[i]; }, q.data(), as_is);
        if (hd % 32 == 0) {
          auto deq = [&](int64_t i) { return deq8[i]; };
          check(kern.qk_row(DType::Q8_0), q8, deq, q.data(), [&](int64_t i) { return q8q[i]; });
          check(kern.qk_row(DType::Q8_0), q8, deq, q_zero_block.data(),
                [&](int64_t i) { return i < 32 ? 0.0 : q8q[i]; });
          // A query rounded already (as the tiled core rounds it) comes through unchanged.
          std::vector<float> pre = q;
          round_q8_blocks(pre.data(), hd);
          check(kern.qk_row(DType::Q8_0), q8, deq, pre.data(), [&](int64_t i) { return q8q[i]; });
        }
      }
    }
  }
}

TEST_CASE("isa names round-trip and the best one is supported", "[kernels]") {
  for (Isa isa : kAllIsas) REQUIRE(isa_from_name(isa_name(isa)) == isa);
  REQUIRE_FALSE(isa_from_name("avx9").has_value());
  REQUIRE(isa_supported(best_isa()));
  REQUIRE(kernels_for(best_isa()).isa == best_isa());
  for (Isa isa : kAllIsas)
    if (!isa_supported(isa))
      REQUIRE_THROWS_WITH(kernels_for(isa), std::string("cpu kernels: this CPU cannot run the '") + isa_name(isa) +
                                                "' kernels; best available: '" + isa_name(best_isa()) + "'");
}
