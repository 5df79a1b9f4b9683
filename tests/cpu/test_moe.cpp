// ffn/moe against a float64 mixture of experts written out here: routing, renormalised weights,
// grouping by expert, ties, experts no token chose, cost, and what the variant refuses.
// Tolerances as in stage_fixtures.h (1e-5 float weights, 1e-2 block-quantised).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "cpu/stage_fixtures.h"

using namespace semline;
using namespace semline::cputest;

namespace {

const std::vector<std::pair<std::string, std::string>> kMoeTensors = {
    {"router", "router"}, {"gate_exps", "gate_exps"}, {"up_exps", "up_exps"}, {"down_exps", "down_exps"}};

struct Moe {
  Layer l;
  explicit Moe(int64_t n_expert, int64_t n_used, DType dt = DType::F32, cpu::Isa isa = cpu::best_isa())
      : l(RopeType::Normal, 8, isa) {
    l.hp.n_expert = n_expert;
    l.hp.n_expert_used = n_used;
    add_moe_weights(l.model, l.hp, dt);
  }
  const Weight& w(const char* name) const { return l.model.values(name); }
  std::vector<int64_t> choose(const Vec& logits) const { return choose_experts(logits, l.hp.n_expert_used); }
  Vec reference(const Vec& x) const { return moe_reference(l.model, l.hp, x); }

  // Input rows the router separates: where the last chosen and the first unchosen logit are
  // within 1e-4 the stage's float rounding may rightly pick the other expert, so such rows are
  // drawn again.
  Rowset rows(int64_t m) const {
    Rowset x(m, l.hp.n_embd);
    for (int64_t t = 0; t < m; ++t)
      while (!router_separates(w("router"), x.row(t), l.hp.n_expert_used)) {
        const std::vector<float> fresh = random_floats(l.hp.n_embd);
        std::copy(fresh.begin(), fresh.end(), x.data.begin() + t * l.hp.n_embd);
      }
    return x;
  }
};

// out += stage(x) for m rows; returns the contributions.
Vec run(Stage& s, Rowset& x, int64_t m, Backend& be, StepData& sd) {
  sd.pos.assign(static_cast<size_t>(m), 0);
  sd.seq.assign(static_cast<size_t>(m), 0);
  const Batch b = sd.batch();
  Rowset out(m, x.width);
  const Rowset start = out;
  s.forward(x.tensor(), out.tensor(), Step{b, be.stream(), nullptr});
  Vec got;
  for (size_t i = 0; i < out.data.size(); ++i) got.push_back(static_cast<double>(out.data[i]) - start.data[i]);
  return got;
}

}  // namespace

TEST_CASE("ffn/moe: out += the chosen experts' SwiGLU weighted by the renormalised router softmax", "[stages][moe]") {
  struct Shape {
    int64_t n_expert, n_used;
  };
  for (cpu::Isa isa : runnable_isas())
    for (DType dt : kAllWeights)
      for (Shape sh : {Shape{6, 2}, Shape{4, 1}, Shape{3, 3}})
        for (int64_t m : {1, 5, 16}) {
          if (dt != DType::F32 && sh.n_expert != 6) continue;  // every routing shape once, every dtype once
          INFO(cpu::isa_name(isa) << " kernels, " << dtype_name(dt) << ", " << sh.n_used << " of " << sh.n_expert
                                  << " experts, " << m << " rows");
          Moe moe(sh.n_expert, sh.n_used, dt, isa);
          auto ffn = build(StageKind::Ffn, "moe", moe.l.context("ffn", kMoeTensors));
          Rowset x = moe.rows(m);
          StepData sd;
          const Vec got = run(*ffn, x, m, moe.l.be, sd);
          Vec want;
          for (int64_t t = 0; t < m; ++t) {
            const Vec y = moe.reference(x.row(t));
            want.insert(want.end(), y.begin(), y.end());
          }
          CHECK(rel_err(got, want) <= weight_tol(dt));
        }
}

TEST_CASE("ffn/moe: equal router logits go to the lower expert index", "[stages][moe]") {
  // A zero router gives every expert the logit 0: top-2 must be experts 0 and 1, weighted 1/2
  // each. The other experts are poisoned, so choosing one of them shows as NaN.
  Moe moe(6, 2);
  moe.l.model.set_values("router", std::vector<float>(6 * 64, 0.0f));
  const int64_t F = moe.l.hp.n_ff, D = moe.l.hp.n_embd;
  for (const char* name : {"gate_exps", "up_exps"}) moe.l.model.poison(name, 2 * F, 4 * F);
  moe.l.model.poison("down_exps", 2 * D, 4 * D);
  auto ffn = build(StageKind::Ffn, "moe", moe.l.context("ffn", kMoeTensors));
  Rowset x(3, D);
  StepData sd;
  const Vec got = run(*ffn, x, 3, moe.l.be, sd);
  Vec want;
  for (int64_t t = 0; t < 3; ++t) {
    Vec y(static_cast<size_t>(D), 0.0);
    for (int64_t e : {0, 1}) {
      const Vec g = matvec(moe.w("gate_exps"), x.row(t), e * F, F), u = matvec(moe.w("up_exps"), x.row(t), e * F, F);
      Vec h(g.size());
      for (size_t i = 0; i < h.size(); ++i) h[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const Vec d = matvec(moe.w("down_exps"), h, e * D, D);
      for (int64_t i = 0; i < D; ++i) y[i] += 0.5 * d[i];
    }
    want.insert(want.end(), y.begin(), y.end());
  }
  CHECK(rel_err(got, want) <= 1e-5);
}

TEST_CASE("ffn/moe: experts no token chose are never read, and cost() counts only the chosen", "[stages][moe]") {
  // Positive inputs and a router whose rows for experts 1 and 4 are positive, the others
  // negative: every token chooses 1 and 4. The four other experts are poisoned.
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
  const int64_t m = 7;
  Rowset x(m, D);
  for (float& v : x.data) v = 0.5f + std::fabs(v);
  StepData sd;
  const Vec got = run(*ffn, x, m, moe.l.be, sd);
  Vec want;
  for (int64_t t = 0; t < m; ++t) {
    const Vec y = moe.reference(x.row(t));
    std::vector<int64_t> chosen = moe.choose(matvec(moe.w("router"), x.row(t)));
    std::sort(chosen.begin(), chosen.end());
    REQUIRE(chosen == std::vector<int64_t>{1, 4});
    want.insert(want.end(), y.begin(), y.end());
  }
  CHECK(rel_err(got, want) <= 1e-5);  // NaN from a poisoned expert would make this infinite

  // The step just run used 2 experts; a batch the stage has not routed is costed at the bound,
  // min(n_expert, slots) = 6 experts. Each expert's three F32 matrices are 3 * 64 * 96 * 4 bytes.
  const Batch ran = sd.batch();
  StepData other_sd;
  other_sd.pos.assign(static_cast<size_t>(m), 0);
  other_sd.seq.assign(static_cast<size_t>(m), 0);
  Batch other = other_sd.batch();
  other.step = ran.step + 1;
  const StageCost used = ffn->cost(ran), bound = ffn->cost(other);
  CHECK(bound.bytes - used.bytes == Approx(4.0 * 3 * 64 * 96 * 4));
  CHECK(used.flops == Approx(bound.flops));
  // Router: 2 * m * 64 * 6; per (token, expert) slot: three 64 x 96 products and the SwiGLU.
  CHECK(used.flops == Approx(2.0 * m * 64 * 6 + 2.0 * m * (6.0 * 64 * 96 + 6.0 * 96 + 2.0 * 64)));
}

TEST_CASE("ffn/moe and ffn/dense say what they lack, bad expert stacks are named", "[stages][moe][errors]") {
  const StageEntry& moe_e = cpu_entries().stage(StageKind::Ffn, "moe");
  const StageEntry& dense_e = cpu_entries().stage(StageKind::Ffn, "dense");
  Moe moe(6, 2);
  const auto dense_why = dense_e.supports(moe.l.context("ffn", kMoeTensors));
  REQUIRE(dense_why.size() == 1);
  CHECK_THAT(dense_why[0], Catch::Contains("6 experts per layer"));
  CHECK(moe_e.supports(moe.l.context("ffn", kMoeTensors)).empty());

  auto partial = kMoeTensors;
  partial.pop_back();
  const auto missing = moe_e.supports(moe.l.context("ffn", partial));
  REQUIRE(missing.size() == 1);
  CHECK_THAT(missing[0], Catch::Contains("no 'down_exps' weight"));

  Layer dense_model;
  const auto no_experts = moe_e.supports(dense_model.context("ffn", {}));
  REQUIRE(no_experts.size() == 1);
  CHECK_THAT(no_experts[0], Catch::Contains("the model has no experts"));

  moe.l.model.add_experts("short_exps", DType::F32, 64, 96, 5, 0.3f);
  auto wrong = kMoeTensors;
  wrong[1].second = "short_exps";
  REQUIRE_THROWS_WITH(moe_e.make_stage(moe.l.context("ffn", wrong)),
                      Catch::Contains("tensor 'short_exps' (gate_exps) has shape F32 [64, 96, 5], expected [64, 96, 6] "
                                      "(n_embd, n_ff, n_expert)"));
  moe.l.hp.n_expert_used = 7;
  REQUIRE_THROWS_WITH(moe_e.make_stage(moe.l.context("ffn", kMoeTensors)),
                      Catch::Contains("must satisfy 1 <= n_expert_used <= n_expert"));
}
