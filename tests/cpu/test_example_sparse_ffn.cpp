// The out-of-tree example plugin ffn/sparse (examples/ffn-sparse), built from the same source beside
// the tests and loaded as a plugin: against a float64 SwiGLU with the same per-token magnitude
// selection, and equal to the dense feed-forward at sparsity 0.
//
// Tolerance 1e-5 (largest error over the largest reference value): the weights are F32 or F16 and
// the reference uses their stored values, so only float arithmetic differs. The selection of kept
// entries is recomputed in double by the reference; two magnitudes next to the cut would have to
// agree to ~1e-7 for float rounding to swap them, which random inputs of this size do not produce.
#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <semline/plugin.h>

#include "backend/cpu_backend.h"
#include "cpu/cpu_test_util.h"

using namespace semline;
using namespace semline::cputest;

namespace {

using Vec = std::vector<double>;

const StageEntry& sparse_entry() {
  static RecordingRegistry r = [] {
    RecordingRegistry reg;
    const std::string path = std::string(SEMLINE_TEST_PLUGIN_DIR) + "/libsemline-test-example-sparse.so";
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);  // stays loaded: the entry holds its code
    if (!lib) FAIL(path << ": " << dlerror());
    auto entry = reinterpret_cast<const semline_plugin_info* (*)(uint32_t)>(dlsym(lib, SEMLINE_PLUGIN_ENTRY_SYMBOL));
    if (!entry) FAIL(path << " has no " << SEMLINE_PLUGIN_ENTRY_SYMBOL);
    entry(SEMLINE_ABI_MAJOR)->register_all(reg);
    return reg;
  }();
  return r.stage(StageKind::Ffn, "sparse");
}

// Zeroes all but the `keep` entries largest in magnitude.
Vec sparsified(Vec v, size_t keep) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return std::fabs(v[a]) > std::fabs(v[b]); });
  for (size_t k = keep; k < idx.size(); ++k) v[idx[k]] = 0;
  return v;
}

Vec matvec(const Weight& w, const Vec& x) {
  Vec y(static_cast<size_t>(w.n_out), 0.0);
  for (int64_t j = 0; j < w.n_out; ++j)
    for (int64_t i = 0; i < w.n_in; ++i) y[j] += w.value[j * w.n_in + i] * x[i];
  return y;
}

struct Case {
  HParams hp;
  FakeModel model;
  cpu::CpuBackend be{3, cpu::best_isa()};
  Case() {
    hp.arch = "llama";
    hp.n_embd = 64;
    hp.n_ff = 176;  // not a multiple of the plugin's column chunks
    hp.n_head = 4;
    hp.n_head_kv = 4;
    hp.head_dim = 16;
    hp.n_layer = 1;
  }
  StageContext context(double sparsity) {
    StageContext c;
    c.backend = &be;
    c.model = &model;
    c.hp = &hp;
    c.layer = 0;
    c.station = "ffn";
    c.tensors = {{"gate", "gate"}, {"up", "up"}, {"down", "down"}};
    c.max_batch_tokens = 8;
    c.params.values["sparsity"] = sparsity;
    return c;
  }
};

}  // namespace

TEST_CASE("example ffn/sparse: declares its parameter and refuses what it cannot serve", "[example]") {
  const StageEntry& e = sparse_entry();
  CHECK(e.backend == "cpu");
  CHECK_FALSE(e.caps.exact);
  REQUIRE(e.params.size() == 1);
  CHECK(e.params[0].name == "sparsity");
  CHECK(e.params[0].max == 0.95);
  Case c;
  StageContext ctx = c.context(0.5);
  ctx.tensors = {{"up", "up"}, {"down", "down"}};
  c.model.add("up", DType::F32, 64, 176, 0.3f);
  c.model.add("down", DType::F32, 176, 64, 0.3f);
  const auto why = e.supports(ctx);
  REQUIRE(why.size() == 1);
  CHECK(why[0].find("no 'gate' weight") != std::string::npos);
}

TEST_CASE("example ffn/sparse: out += down(sparse(silu(gate x') * up x')), x' = sparse(x), against float64",
          "[example]") {
  const StageEntry& e = sparse_entry();
  for (DType dt : {DType::F32, DType::F16})
    for (double s : {0.0, 0.5, 0.9})
      for (int64_t m : {1, 3}) {
        INFO(dtype_name(dt) << ", sparsity " << s << ", " << m << " tokens");
        Case c;
        const Weight& g = c.model.add("gate", dt, 64, 176, 0.3f);
        const Weight& u = c.model.add("up", dt, 64, 176, 0.3f);
        const Weight& d = c.model.add("down", dt, 176, 64, 0.3f);
        const StageContext ctx = c.context(s);
        REQUIRE(e.supports(ctx).empty());
        auto ffn = e.make_stage(ctx);

        std::vector<float> x = random_floats(m * 64), out = random_floats(m * 64);
        const std::vector<float> start = out;
        std::vector<int32_t> pos(static_cast<size_t>(m), 0), seq(static_cast<size_t>(m), 0);
        Batch b;
        b.n_tokens = static_cast<int32_t>(m);
        b.positions = pos.data();
        b.seq = seq.data();
        ffn->forward(make_tensor(DType::F32, {64, m}, x.data()), make_tensor(DType::F32, {64, m}, out.data()),
                     Step{b, c.be.stream(), nullptr});

        const auto keep = [s](int64_t n) { return static_cast<size_t>(std::max(1.0, std::ceil((1 - s) * n))); };
        Vec got, want;
        for (int64_t t = 0; t < m; ++t) {
          const Vec xs = sparsified(to_double(x.data() + t * 64, 64), keep(64));
          const Vec gx = matvec(g, xs), ux = matvec(u, xs);
          Vec h(gx.size());
          for (size_t i = 0; i < h.size(); ++i) h[i] = gx[i] / (1 + std::exp(-gx[i])) * ux[i];
          const Vec y = matvec(d, sparsified(h, keep(176)));
          for (int64_t i = 0; i < 64; ++i) {
            want.push_back(y[i]);
            got.push_back(static_cast<double>(out[t * 64 + i]) - start[t * 64 + i]);
          }
        }
        CHECK(rel_err(got, want) <= 1e-5);
        // Every token's work is counted: kept rows of both transposed matrices, F32.
        const StageCost cost = ffn->cost(b);
        CHECK(cost.bytes >= static_cast<double>(m) * 4.0 * (keep(64) * 2.0 * 176 + keep(176) * 64.0));
      }
}
