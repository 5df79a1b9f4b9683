// ffn/moe on every backend against a float64 mixture of experts: routing, renormalised weights,
// expert slots of one row up to more than a tile per expert, ties, experts no token chose, what a
// step costs, and what the variant refuses. Tolerances as harness.h states them; rows whose last
// chosen and first unchosen router logits come closer than 1e-4 are drawn again, so the backend
// and the reference route alike.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "stations/harness.h"

using namespace semline;
using namespace semline::stationtest;
using testing::matvec;

namespace {

const std::vector<std::pair<std::string, std::string>> kMoeTensors = {
    {"router", "router"}, {"gate_exps", "gate_exps"}, {"up_exps", "up_exps"}, {"down_exps", "down_exps"}};

struct Moe {
  Layer l;
  Moe(const Setup& s, int64_t n_expert, int64_t n_used, DType dt = DType::F32) : l(s) {
    l.hp.n_expert = n_expert;
    l.hp.n_expert_used = n_used;
    testing::add_moe_weights(l.model, l.hp, dt);
  }
  const Weight& w(const char* name) const { return l.model.values(name); }
  Vec reference(const Vec& x) const { return testing::moe_reference(l.model, l.hp, x); }

  // m random rows, each one the router separates.
  std::vector<float> rows(int64_t m) const {
    const int64_t D = l.hp.n_embd;
    std::vector<float> x = random_floats(m * D);
    for (int64_t t = 0; t < m; ++t)
      while (!testing::router_separates(w("router"), Vec(x.begin() + t * D, x.begin() + (t + 1) * D), l.hp.n_expert_used)) {
        const std::vector<float> fresh = random_floats(D);
        std::copy(fresh.begin(), fresh.end(), x.begin() + t * D);
      }
    return x;
  }

  // out += stage(x) for the rows x (one step of m tokens, sd keeps its arrays); returns what the
  // stage added.
  Vec run(Stage& s, const std::vector<float>& xv, StepData& sd) {
    const int64_t D = l.hp.n_embd, m = static_cast<int64_t>(xv.size()) / D;
    sd = rows_step(m);
    Batch b = sd.batch();
    b.step = ++steps;
    Rows x(l.be, xv, D), out(l.be, m, D);
    s.forward(x.t, out.t, Step{b, l.be.stream(), nullptr});
    return out.added();
  }
  Vec references(const std::vector<float>& xv) const {
    const int64_t D = l.hp.n_embd;
    Vec want;
    for (size_t t = 0; t * D < xv.size(); ++t) {
      const Vec y = reference(Vec(xv.begin() + t * D, xv.begin() + (t + 1) * D));
      want.insert(want.end(), y.begin(), y.end());
    }
    return want;
  }
  uint64_t steps = 0;
};

}  // namespace

TEMPLATE_TEST_CASE("ffn/moe: out += the chosen experts' SwiGLU weighted by the renormalised router softmax",
                   "[stations][moe]", SEMLINE_STATION_TARGETS) {
  struct Shape {
    int64_t n_expert, n_used;
  };
  FOR_EACH_SETUP(setup)
  for (DType dt : kAllWeights)
    for (Shape sh : {Shape{6, 2}, Shape{4, 1}, Shape{3, 3}})
      // 1 and 4 tokens: up to 8 slots (matrix-vector products); 5, 16: tiles; 70 tokens over 3
      // experts: 70 slots each, more than a tile per expert.
      for (int64_t m : {1, 4, 5, 16, 70}) {
        const bool every_shape = dt == DType::F32;  // every routing shape and size once
        if (!every_shape && (sh.n_expert != 6 || m == 4 || m == 70)) continue;
        if (m == 70 && sh.n_expert != 3) continue;
        INFO(setup.name << ", " << dtype_name(dt) << ", " << sh.n_used << " of " << sh.n_expert << " experts, " << m
                        << " rows");
        Moe moe(setup, sh.n_expert, sh.n_used, dt);
        auto ffn = moe.l.build(StageKind::Ffn, "moe", moe.l.context("ffn", kMoeTensors, 80));
        const std::vector<float> x = moe.rows(m);
        StepData sd;
        CHECK(rel_err(moe.run(*ffn, x, sd), moe.references(x)) <= moe.l.weight_tol(dt));
      }
}

TEMPLATE_TEST_CASE("ffn/moe: equal router logits go to the lower expert index", "[stations][moe]",
                   SEMLINE_STATION_TARGETS) {
  // A zero router gives every expert the logit 0: top-2 must be experts 0 and 1, weighted 1/2
  // each. The other experts are poisoned, so choosing one of them shows as NaN.
  FOR_EACH_SETUP(setup)
  for (int64_t m : {1, 12}) {
    INFO(setup.name << ", " << m << " rows");
    Moe moe(setup, 6, 2);
    moe.l.model.set_values("router", std::vector<float>(6 * 64, 0.0f));
    const int64_t F = moe.l.hp.n_ff, D = moe.l.hp.n_embd;
    for (const char* name : {"gate_exps", "up_exps"}) moe.l.model.poison(name, 2 * F, 4 * F);
    moe.l.model.poison("down_exps", 2 * D, 4 * D);
    auto ffn = moe.l.build(StageKind::Ffn, "moe", moe.l.context("ffn", kMoeTensors));
    const std::vector<float> x = random_floats(m * D);
    StepData sd;
    const Vec got = moe.run(*ffn, x, sd);
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

TEMPLATE_TEST_CASE("ffn/moe: experts no token chose are never read, and cost() counts the experts a step can use",
                   "[stations][moe]", SEMLINE_STATION_TARGETS) {
  // Positive inputs and a router whose rows for experts 1 and 4 are positive, the others
  // negative: every token chooses 1 and 4. The four other experts are poisoned.
  FOR_EACH_SETUP(setup)
  for (int64_t m : {1, 7}) {
    INFO(setup.name << ", " << m << " rows");
    Moe moe(setup, 6, 2);
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
    auto ffn = moe.l.build(StageKind::Ffn, "moe", moe.l.context("ffn", kMoeTensors));
    std::vector<float> x = random_floats(m * D);
    for (float& v : x) v = 0.5f + std::fabs(v);
    StepData sd;
    CHECK(rel_err(moe.run(*ffn, x, sd), moe.references(x)) <= 1e-5);  // NaN from a poisoned expert: infinite

    // A step's cost: the router, and per (token, expert) slot three 64 x 96 products and the
    // SwiGLU; its bytes at least the experts it can use, each expert's three F32 matrices
    // 3 * 64 * 96 * 4 bytes. m tokens can use at most min(6, 2m) experts; a backend that routes
    // on the host knows the step just run used two, one that routes on the device costs the bound.
    Batch ran = sd.batch();
    ran.step = moe.steps;
    StepData none_sd;
    const Batch none = none_sd.batch();
    const double expert = 3.0 * 64 * 96 * 4, used = ffn->cost(ran).bytes - ffn->cost(none).bytes;
    CHECK(ffn->cost(ran).flops == Approx(2.0 * m * 64 * 6 + 2.0 * m * (6.0 * 64 * 96 + 6.0 * 96 + 2.0 * 64)));
    CHECK(used >= 2 * expert);
    CHECK(used < (std::min<int64_t>(6, 2 * m) + 1) * expert);
  }
}

TEMPLATE_TEST_CASE("ffn/moe says what it lacks and names a bad expert stack and bad expert counts",
                   "[stations][moe][errors]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup) {
    INFO(setup.name);
    Moe moe(setup, 6, 2);
    const StageEntry& e = moe.l.entry(StageKind::Ffn, "moe");
    CHECK(e.supports(moe.l.context("ffn", kMoeTensors)).empty());
    auto partial = kMoeTensors;
    partial.pop_back();
    const auto missing = e.supports(moe.l.context("ffn", partial));
    REQUIRE(missing.size() == 1);
    CHECK_THAT(missing[0], Catch::Contains("no 'down_exps' weight"));
    const auto router_only = e.supports(moe.l.context("ffn", {{"router", "router"}}));
    REQUIRE(router_only.size() == 3);
    Layer dense(setup);
    const auto no_experts = e.supports(dense.context("ffn", {}));
    REQUIRE(no_experts.size() == 1);
    CHECK_THAT(no_experts[0], Catch::Contains("the model has no experts"));

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
}
