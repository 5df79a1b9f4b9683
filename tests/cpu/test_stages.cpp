// What the cpu backend does under the stations beyond the parity harness (tests/stations): the
// linear maps as its kernels bind them (repacked under AVX-512, partial tiles, expert slices),
// and its registry entries.
#include <catch2/catch.hpp>

#include <algorithm>

#include "backend/cpu_backend.h"
#include "cpu/cpu_test_util.h"
#include "ops/linear.h"
#include "stations/binding.h"
#include "stations/harness.h"

using namespace semline;
using namespace semline::cpu;
using namespace semline::cputest;
using stationtest::Layer;
using testing::kAllWeights;
using testing::matvec;
using testing::Vec;

namespace {

// Rows of random activations in host memory.
struct Rowset {
  std::vector<float> data;
  int64_t width;
  Rowset(int64_t rows, int64_t w) : data(random_floats(rows * w)), width(w) {}
  Vec row(int64_t r) const { return Vec(data.begin() + r * width, data.begin() + (r + 1) * width); }
};

}  // namespace

TEST_CASE("linear maps as the stages bind them: repacked under AVX-512 and AMX, partial tiles, expert slices", "[stages]") {
  // A map of 67 rows (a partial last tile), one of 130 rows over a single block, and the slices of
  // a stack of 3 experts of 67 rows (each slice starts inside a 16-row tile of the stack), run
  // side by side in one dispatch over 3 threads, against float64, overwriting and accumulating.
  for (const stationtest::Setup& setup : stationtest::Cpu::setups())
    for (DType dt : kAllWeights) {
      Layer l(setup);
      CpuBackend& be = static_cast<CpuBackend&>(l.be);
      const Isa isa = be.kernels().isa;
      const Weight& w = l.model.add("w", dt, 64, 67, 0.5f);
      const Weight& one = l.model.add("one", dt, 32, 130, 0.5f);
      const Weight& exps = l.model.add_experts("exps", dt, 64, 67, 3, 0.5f);
      const StageContext ctx = l.context("ffn", {{"w", "w"}, {"one", "one"}, {"exps", "exps"}});
      // As the cpu kernels bind them: a map over the checked view, one per expert at its offset.
      auto over = [&](const Tensor& v, int64_t e) {
        return Linear::over(be, v.dtype, v.ne[0], v.ne[1], static_cast<const char*>(v.host) + e * v.nb[2],
                            static_cast<size_t>(v.nb[1]));
      };
      const Tensor vexps = stations::weight_view(ctx, "exps", {64, 67, 3}, "(n_in, n_out, n_expert)");
      const Linear lw = over(stations::weight_view(ctx, "w", {64, 67}, "(n_in, n_out)"), 0);
      const Linear lone = over(stations::weight_view(ctx, "one", {32, 130}, "(n_in, n_out)"), 0);
      const Linear le[3] = {over(vexps, 0), over(vexps, 1), over(vexps, 2)};
      const bool repacked = (isa == Isa::Avx512 || isa == Isa::Amx) && takes_quantized_input(dt);
      for (const Linear* m : {&lw, &lone, &le[0], &le[1], &le[2]}) {
        REQUIRE((m->repacked != nullptr) == repacked);
        REQUIRE((m->data == nullptr) == repacked);  // the file's rows are not read through the map again
      }
      for (int64_t m : {1, 2, 5, 8, 17, 70}) {
        INFO(isa_name(isa) << " kernels, " << dtype_name(dt) << ", " << m << " rows");
        Rowset x(m, 64), x32(m, 32), y(m, 67), y32(m, 130), ye(m, 67);
        ScratchLayout layout;
        QRowsLayout q64, q32;
        q64.plan(layout, m, 64);
        q32.plan(layout, m, 32);
        AlignedBlock scratch(layout.total());
        const QRows xq = q64.at(static_cast<char*>(scratch.data())), xq32 = q32.at(static_cast<char*>(scratch.data()));
        const bool quant = takes_quantized_input(dt);
        if (quant) {
          quantize_rows(be, x.data.data(), 64, m, 64, xq);
          quantize_rows(be, x32.data.data(), 32, m, 32, xq32);
        }
        const Rows in{x.data.data(), 64, quant ? &xq : nullptr}, in32{x32.data.data(), 32, quant ? &xq32 : nullptr};
        for (int64_t e = 0; e < 3; ++e) {
          const bool acc = (m + e) % 2 == 1;
          const Rowset y0 = y, y320 = y32, ye0 = ye;
          const MatOp ops[3] = {{&lw, in, y.data.data(), 67, acc}, {&lone, in32, y32.data.data(), 130, !acc},
                                {&le[e], in, ye.data.data(), 67, acc}};
          run_matmuls(be, ops, 3, m);
          Vec got, want;
          for (int64_t r = 0; r < m; ++r) {
            const Vec a = matvec(w, x.row(r)), b = matvec(one, x32.row(r)), c = matvec(exps, x.row(r), e * 67, 67);
            for (int64_t j = 0; j < 67; ++j) {
              got.push_back(y.data[r * 67 + j] - (acc ? static_cast<double>(y0.data[r * 67 + j]) : 0.0));
              want.push_back(a[j]);
              got.push_back(ye.data[r * 67 + j] - (acc ? static_cast<double>(ye0.data[r * 67 + j]) : 0.0));
              want.push_back(c[j]);
            }
            for (int64_t j = 0; j < 130; ++j) {
              got.push_back(y32.data[r * 130 + j] - (!acc ? static_cast<double>(y320.data[r * 130 + j]) : 0.0));
              want.push_back(b[j]);
            }
          }
          CHECK(rel_err(got, want) <= l.weight_tol(dt));
        }
      }
    }
}

TEST_CASE("registry entries describe the cpu stages and backend", "[stages][registry]") {
  const RecordingRegistry& r = stationtest::Cpu::entries();
  REQUIRE(r.backends.size() == 1);
  const BackendEntry& be = r.backends[0];
  REQUIRE(be.name == "cpu");
  REQUIRE(be.probe().empty());
  REQUIRE(be.params.at(0).name == "threads");
  REQUIRE(be.params.at(0).min == 0);

  Params p;
  p.values["threads"] = int64_t{2};
  p.values["isa"] = std::string("scalar");
  auto backend = be.create(p, {});
  REQUIRE(backend->host_threads() == 2);
  REQUIRE(backend->info().device.find("scalar kernels") != std::string::npos);
  p.values["isa"] = std::string("auto");
  REQUIRE(be.create(p, {})->info().device.find(isa_name(best_isa())) != std::string::npos);
  // prefetch: auto follows the CPU's vendor; each explicit choice is what the backend runs with.
  REQUIRE(be.create(p, {})->info().device.find(std::string(prefetch_name(default_prefetch())) + " prefetch") !=
          std::string::npos);
  for (Prefetch want : {Prefetch::Software, Prefetch::Hardware}) {
    p.values["prefetch"] = std::string(prefetch_name(want));
    const auto made = be.create(p, {});
    REQUIRE(static_cast<CpuBackend&>(*made).kernels().prefetch == want);
  }
  p.values["prefetch"] = std::string("sometimes");
  REQUIRE_THROWS_WITH(be.create(p, {}), Catch::Contains("unknown prefetch 'sometimes'") &&
                                            Catch::Contains("auto, software, hardware"));

  const StageEntry& dense = r.stage(StageKind::Attention, "dense");
  const StageEntry& flash = r.stage(StageKind::Attention, "flash");
  REQUIRE(flash.rank > dense.rank);
  REQUIRE(dense.description.find("reference") != std::string::npos);
  REQUIRE(flash.params.at(0).name == "block");
  REQUIRE(std::get<int64_t>(flash.params.at(0).default_value) == 64);
  for (const StageEntry& e : r.stages) {
    INFO(stage_kind_name(e.kind) << "/" << e.variant);
    REQUIRE(e.backend == "cpu");
    REQUIRE(e.caps.exact == (e.variant != "block_sparse"));  // the one approximation
    REQUIRE(e.make_stage);
    for (DType d : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0})
      REQUIRE(std::find(e.caps.weight_dtypes.begin(), e.caps.weight_dtypes.end(), d) != e.caps.weight_dtypes.end());
  }
  for (auto [kind, variant] : {std::pair{StageKind::Embedding, "lookup"}, std::pair{StageKind::Norm, "rms"},
                               std::pair{StageKind::Ffn, "dense"}, std::pair{StageKind::Head, "dense"}})
    REQUIRE_NOTHROW(r.stage(kind, variant));

  Layer l(stationtest::Cpu::setups().at(0));
  l.hp.sliding_window = 4096;
  const auto why = flash.supports(l.context("attn", {}));
  REQUIRE(why.size() == 1);
  REQUIRE(why[0].find("sliding window of 4096") != std::string::npos);
}
