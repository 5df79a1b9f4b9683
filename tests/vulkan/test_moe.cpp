// ffn/moe on the device against a float64 mixture of experts written out here: routing,
// renormalised weights, both expert-indexed kernels (matrix-vector for at most 8 slots, tiles of
// one expert's slots beyond), experts with more slots than a tile, ties, experts no token chose,
// replayed decode steps, and what the stage refuses. Tolerance 1e-5 for every weight dtype
// (stage_fixtures.h): the router's float logits agree with float64 to ~1e-7, and rows whose
// chosen and unchosen logits come closer than 1e-4 are drawn again, so both route alike.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "vulkan/stage_fixtures.h"

using namespace semline;
using namespace semline::vktest;

namespace {

const std::vector<std::pair<std::string, std::string>> kMoeTensors = {
    {"router", "router"}, {"gate_exps", "gate_exps"}, {"up_exps", "up_exps"}, {"down_exps", "down_exps"}};

struct Moe {
  Layer l;
  Moe(int64_t n_expert, int64_t n_used, DType dt = DType::F32, bool subgroups = true) : l(subgroups) {
    l.hp.n_expert = n_expert;
    l.hp.n_expert_used = n_used;
    add_moe_weights(l.model, l.hp, dt);
  }
  const Weight& w(const char* name) const { return l.model.values(name); }
  std::vector<int64_t> choose(const Vec& logits) const { return choose_experts(logits, l.hp.n_expert_used); }
  Vec reference(const Vec& x) const { return moe_reference(l.model, l.hp, x); }
  bool separated(const Vec& x) const { return router_separates(w("router"), x, l.hp.n_expert_used); }

  // m random rows, each one the router separates.
  std::vector<float> rows(int64_t m) const {
    const int64_t D = l.hp.n_embd;
    std::vector<float> x = random_floats(m * D);
    for (int64_t t = 0; t < m; ++t)
      while (!separated(Vec(x.begin() + t * D, x.begin() + (t + 1) * D))) {
        const std::vector<float> fresh = random_floats(D);
        std::copy(fresh.begin(), fresh.end(), x.begin() + t * D);
      }
    return x;
  }

  // out += stage(x) for the rows x; returns the contributions and the float64 ones.
  std::pair<Vec, Vec> run(Stage& s, const std::vector<float>& xv) {
    const int64_t D = l.hp.n_embd, m = static_cast<int64_t>(xv.size()) / D;
    StepData sd;
    sd.pos.assign(static_cast<size_t>(m), 0);
    sd.seq.assign(static_cast<size_t>(m), 0);
    const Batch b = sd.batch();
    Rows x(*l.be, xv, D), out(*l.be, m, D);
    s.forward(x.dev.t, out.dev.t, Step{b, l.be->stream(), nullptr});
    Vec want;
    for (int64_t t = 0; t < m; ++t) {
      const Vec y = reference(x.row(t));
      want.insert(want.end(), y.begin(), y.end());
    }
    return {added(*l.be, out), want};
  }
};

}  // namespace

TEST_CASE("ffn/moe: out += the chosen experts' SwiGLU weighted by the renormalised router softmax (needs a Vulkan "
          "device)",
          "[stages][moe]") {
  SEMLINE_REQUIRE_VULKAN();
  struct Shape {
    int64_t n_expert, n_used;
  };
  for (bool sg : reduction_modes())
    for (DType dt : kAllWeights)
      for (Shape sh : {Shape{6, 2}, Shape{4, 1}, Shape{3, 3}})
        // 1 and 4 tokens: up to 8 slots, the matrix-vector kernel; 5, 16: tiles; 70 tokens over 3
        // experts: 70 slots each, two tiles per expert.
        for (int64_t m : {1, 4, 5, 16, 70}) {
          const bool every_shape = dt == DType::F32 && sg;  // every routing shape and size once
          if (!every_shape && (sh.n_expert != 6 || m == 4 || m == 70)) continue;
          if (m == 70 && sh.n_expert != 3) continue;
          INFO((sg ? "subgroups" : "shared memory") << ", " << dtype_name(dt) << ", " << sh.n_used << " of "
                                                    << sh.n_expert << " experts, " << m << " rows");
          Moe moe(sh.n_expert, sh.n_used, dt, sg);
          auto ffn = build(StageKind::Ffn, "moe", moe.l.context("ffn", kMoeTensors, 80));
          const auto [got, want] = moe.run(*ffn, moe.rows(m));
          CHECK(rel_err(got, want) <= 1e-5);
        }
}

TEST_CASE("ffn/moe: equal router logits go to the lower expert index (needs a Vulkan device)", "[stages][moe]") {
  SEMLINE_REQUIRE_VULKAN();
  // A zero router gives every expert the logit 0: top-2 must be experts 0 and 1, weighted 1/2
  // each. The other experts are poisoned, so choosing one of them shows as NaN.
  for (int64_t m : {1, 12}) {
    INFO(m << " rows");
    Moe moe(6, 2);
    moe.l.model.set_values("router", std::vector<float>(6 * 64, 0.0f));
    const int64_t F = moe.l.hp.n_ff, D = moe.l.hp.n_embd;
    for (const char* name : {"gate_exps", "up_exps"}) moe.l.model.poison(name, 2 * F, 4 * F);
    moe.l.model.poison("down_exps", 2 * D, 4 * D);
    auto ffn = build(StageKind::Ffn, "moe", moe.l.context("ffn", kMoeTensors));
    const std::vector<float> x = random_floats(m * D);
    const auto [got, ignored] = moe.run(*ffn, x);
    Vec want;
    for (int64_t t = 0; t < m; ++t) {
      const Vec xt(x.begin() + t * D, x.begin() + (t + 1) * D);
      Vec y(static_cast<size_t>(D), 0.0);
      for (int64_t e : {0, 1}) {
        const Vec g = matvec(moe.w("gate_exps"), xt, e * F, F), u = matvec(moe.w("up_exps"), xt, e * F, F);
        Vec h(g.size());
        for (size_t i = 0; i < h.size(); ++i) h[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
        const Vec d = matvec(moe.w("down_exps"), h, e * D, D);
        for (int64_t i = 0; i < D; ++i) y[i] += 0.5 * d[i];
      }
      want.insert(want.end(), y.begin(), y.end());
    }
    CHECK(rel_err(got, want) <= 1e-5);
  }
}

TEST_CASE("ffn/moe: experts no token chose are never read, and cost() counts the experts a step can use (needs a Vulkan "
          "device)",
          "[stages][moe]") {
  SEMLINE_REQUIRE_VULKAN();
  // Positive inputs and a router whose rows for experts 1 and 4 are positive, the others
  // negative: every token chooses 1 and 4. The four other experts are poisoned.
  for (int64_t m : {1, 7}) {
    INFO(m << " rows");
    Moe moe(6, 2);
    const int64_t F = moe.l.hp.n_ff, D = moe.l.hp.n_embd;
    std::vector<float> router = random_floats(6 * D, 0.3f);
    for (int64_t e = 0; e < 6; ++e)
      for (int64_t i = 0; i < D; ++i) {
        float& v = router[e * D + i];
        v = (e == 1 || e == 4 ? 1.0f : -1.0f) * (0.05f + std::fabs(v));
      }
    moe.l.model.set_values("router", router);
    for (int64_t e : {0, 2, 3, 5}) {
      for (const char* name : {"gate_exps", "up_exps"}) moe.l.model.poison(name, e * F, F);
      moe.l.model.poison("down_exps", e * D, D);
    }
    auto ffn = build(StageKind::Ffn, "moe", moe.l.context("ffn", kMoeTensors));
    std::vector<float> x = random_floats(m * D);
    for (float& v : x) v = 0.5f + std::fabs(v);
    const auto [got, want] = moe.run(*ffn, x);
    CHECK(rel_err(got, want) <= 1e-5);  // NaN from a poisoned expert would make this infinite
  }
  // The routing stays on the device: a step's cost counts min(n_expert, slots) experts, each
  // expert's three F32 matrices 3 * 64 * 96 * 4 bytes. A one-token step uses exactly two.
  Moe moe(6, 2);
  auto ffn = build(StageKind::Ffn, "moe", moe.l.context("ffn", kMoeTensors));
  StepData sd;
  const Batch none = sd.batch();
  sd.pos = {0};
  sd.seq = {0};
  const Batch one = sd.batch();
  const double expert = 3.0 * 64 * 96 * 4;
  CHECK(ffn->cost(one).bytes - ffn->cost(none).bytes == Approx(2 * expert + 8.0 * 64 + 2 * (12.0 * 64 + 16.0 * 96)));
  CHECK(ffn->cost(one).flops == Approx(2.0 * 64 * 6 + 2.0 * (6.0 * 64 * 96 + 6.0 * 96 + 2.0 * 64)));
}

TEST_CASE("ffn/moe decode steps replay one recorded command buffer and route each step's data (needs a Vulkan "
          "device)",
          "[stages][moe]") {
  SEMLINE_REQUIRE_VULKAN();
  Moe moe(8, 2, DType::Q8_0);
  const Weight& scale = moe.l.model.add("norm", DType::F32, 64, 1, 1.0f);
  auto norm = build(StageKind::Norm, "rms", moe.l.context("ffn_norm", {{"weight", "norm"}}));
  auto ffn = build(StageKind::Ffn, "moe", moe.l.context("ffn", kMoeTensors));
  vk::VulkanBackend& be = *moe.l.be;
  Rows h(be, 1, 64), x(be, 1, 64);
  const uint64_t replays = be.vstream().replays();
  size_t sets_after_first = 0;
  for (int32_t pos = 0; pos < 12; ++pos) {
    INFO("step " << pos);
    // A fresh h each step, uploaded into the same buffer: only data changes between steps, and
    // the tokens route to different experts.
    std::vector<float> hv = random_floats(64);
    while (!moe.separated(rmsnorm(Vec(hv.begin(), hv.end()), scale, moe.l.hp.norm_eps))) hv = random_floats(64);
    be.copy_to_device(hv.data(), h.dev.t, 256, be.stream());
    StepData sd;
    sd.pos = {pos};
    sd.seq = {0};
    Batch b = sd.batch();
    b.step = static_cast<uint64_t>(pos) + 1;
    norm->forward(h.dev.t, x.dev.t, Step{b, be.stream(), nullptr});
    ffn->forward(x.dev.t, h.dev.t, Step{b, be.stream(), nullptr});
    const std::vector<float> xv = read_back(be, x.dev.t), got = read_back(be, h.dev.t);
    const Vec want = moe.reference(Vec(xv.begin(), xv.end()));
    Vec added(64);
    for (int i = 0; i < 64; ++i) added[i] = static_cast<double>(got[i]) - hv[i];
    CHECK(rel_err(added, want) <= 1e-5);
    if (pos == 0) sets_after_first = be.kernels().cached_sets();
  }
  CHECK(be.vstream().replays() - replays >= 10);
  CHECK(be.kernels().cached_sets() == sets_after_first);  // nothing allocated per token
}

TEST_CASE("ffn/moe names a bad expert stack and bad expert counts (needs a Vulkan device)", "[stages][moe][errors]") {
  SEMLINE_REQUIRE_VULKAN();
  const StageEntry& e = vulkan_entries().stage(StageKind::Ffn, "moe");
  Moe moe(6, 2);
  CHECK(e.supports(moe.l.context("ffn", kMoeTensors)).empty());
  moe.l.model.add_experts("short_exps", DType::F32, 64, 96, 5, 0.3f);
  auto wrong = kMoeTensors;
  wrong[1].second = "short_exps";
  CHECK_THROWS_WITH(e.make_stage(moe.l.context("ffn", wrong)),
                    Catch::Contains("tensor 'short_exps' (gate_exps) has shape F32 [64, 96, 5], expected [64, 96, 6] "
                                    "(n_embd, n_ff, n_expert)"));
  moe.l.hp.n_expert_used = 7;
  CHECK_THROWS_WITH(e.make_stage(moe.l.context("ffn", kMoeTensors)),
                    Catch::Contains("must satisfy 1 <= n_expert_used <= n_expert"));
}
