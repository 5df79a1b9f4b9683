// ffn/dense on every backend: SwiGLU, GeGLU (exact and tanh), and the GELU MLP (exact and tanh)
// with and without biases, every weight dtype, one row, a few rows and a tile of rows; writing its
// result (ahead of a post norm) instead of adding it; and what it refuses. Tolerances as harness.h
// states them.
#include <catch2/catch.hpp>

#include <cmath>

#include "stations/harness.h"

using namespace semline;
using namespace semline::stationtest;
using testing::matvec;
using testing::plus;

namespace {

double gelu(double v, Activation act) {
  const double z = std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v);
  return act == Activation::Gelu ? 0.5 * v * std::erfc(-v / std::sqrt(2.0)) : 0.5 * v * (1.0 + std::tanh(z));
}

}  // namespace

TEMPLATE_TEST_CASE("ffn: out += down(silu(gate x) * up x) for every weight dtype", "[stations][ffn]",
                   SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (DType dt : kAllWeights)
    for (int64_t m : {1, 5, 16}) {  // one row, the multi-row matrix-vector products, tiles
      INFO(setup.name << ", " << dtype_name(dt) << ", " << m << " rows");
      Layer l(setup);
      const Weight& g = l.model.add("gate", dt, 64, 96, 0.3f);
      const Weight& u = l.model.add("up", dt, 64, 96, 0.3f);
      const Weight& d = l.model.add("down", dt, 96, 64, 0.3f);
      auto ffn = l.build(StageKind::Ffn, "dense", l.context("ffn", {{"gate", "gate"}, {"up", "up"}, {"down", "down"}}));
      Rows x(l.be, m, 64), out(l.be, m, 64);
      forward_rows(*ffn, l.be, x, out);
      Vec want;
      for (int64_t t = 0; t < m; ++t) {
        const Vec gx = matvec(g, x.row(t)), ux = matvec(u, x.row(t));
        Vec h(gx.size());
        for (size_t i = 0; i < h.size(); ++i) h[i] = gx[i] / (1 + std::exp(-gx[i])) * ux[i];
        const Vec y = matvec(d, h);
        want.insert(want.end(), y.begin(), y.end());
      }
      CHECK(rel_err(out.added(), want) <= l.weight_tol(dt));
    }
}

TEMPLATE_TEST_CASE("ffn: GeGLU, out += down(gelu(gate x) * up x), exact and tanh, written and not added when asked",
                   "[stations][ffn][gemma2]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (Activation act : {Activation::Gelu, Activation::GeluTanh})
    for (DType dt : kAllWeights)
      for (int64_t m : {1, 5, 16}) {
        if (m != 5 && dt != DType::F32) continue;  // every dtype once, every row count with F32
        for (OutMode mode : {OutMode::Natural, OutMode::Write}) {
          INFO(setup.name << ", " << (act == Activation::Gelu ? "gelu" : "gelu_tanh") << ", " << dtype_name(dt) << ", "
                          << m << " rows" << (mode == OutMode::Write ? ", written" : ""));
          Layer l(setup);
          l.hp.ffn_act = act;
          const Weight& g = l.model.add("gate", dt, 64, 96, 0.3f);
          const Weight& u = l.model.add("up", dt, 64, 96, 0.3f);
          const Weight& d = l.model.add("down", dt, 96, 64, 0.3f);
          auto ffn = l.build(StageKind::Ffn, "dense", l.context("ffn", {{"gate", "gate"}, {"up", "up"}, {"down", "down"}}));
          Rows x(l.be, m, 64), out(l.be, m, 64);
          forward_rows(*ffn, l.be, x, out, mode);
          Vec want;
          for (int64_t t = 0; t < m; ++t) {
            const Vec gx = matvec(g, x.row(t)), ux = matvec(u, x.row(t));
            Vec h(gx.size());
            for (size_t i = 0; i < h.size(); ++i) h[i] = gelu(gx[i], act) * ux[i];
            const Vec y = matvec(d, h);
            want.insert(want.end(), y.begin(), y.end());
          }
          if (mode == OutMode::Write) CHECK(rel_err(out.read(), want) <= l.weight_tol(dt));
          else CHECK(rel_err(out.added(), want) <= l.weight_tol(dt));
        }
      }
}

TEMPLATE_TEST_CASE("ffn: out += down(gelu(up x + b_up)) + b_down, exact and tanh GELU, every weight dtype",
                   "[stations][ffn][gpt2]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (Activation act : {Activation::Gelu, Activation::GeluTanh})
    for (DType dt : kAllWeights)
      for (int64_t m : {1, 5, 16})
        for (bool biases : {true, false}) {
          if ((!biases || m != 5) && dt != DType::F32) continue;  // every dtype once, every form with F32
          INFO(setup.name << ", " << (act == Activation::Gelu ? "gelu" : "gelu_tanh") << ", " << dtype_name(dt) << ", "
                          << m << " rows" << (biases ? ", biases" : ""));
          Layer l(setup);
          l.hp.ffn_act = act;
          const Weight& u = l.model.add("up", dt, 64, 96, 0.3f);
          const Weight& ub = l.model.add("up_b", DType::F32, 96, 1, 1.0f);
          const Weight& d = l.model.add("down", dt, 96, 64, 0.3f);
          const Weight& db = l.model.add("down_b", DType::BF16, 64, 1, 1.0f);
          std::vector<std::pair<std::string, std::string>> tensors = {{"up", "up"}, {"down", "down"}};
          if (biases) tensors.insert(tensors.end(), {{"up_bias", "up_b"}, {"down_bias", "down_b"}});
          auto ffn = l.build(StageKind::Ffn, "dense", l.context("ffn", tensors));
          Rows x(l.be, m, 64), out(l.be, m, 64);
          forward_rows(*ffn, l.be, x, out);
          Vec want;
          for (int64_t t = 0; t < m; ++t) {
            Vec h = plus(matvec(u, x.row(t)), biases ? &ub : nullptr);
            for (double& v : h) v = gelu(v, act);
            const Vec y = plus(matvec(d, h), biases ? &db : nullptr);
            want.insert(want.end(), y.begin(), y.end());
          }
          CHECK(rel_err(out.added(), want) <= l.weight_tol(dt));
        }
}

TEMPLATE_TEST_CASE("ffn/dense says what it cannot serve, and names a weight it cannot find", "[stations][ffn][errors]",
                   SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup) {
    INFO(setup.name);
    Layer l(setup);
    l.model.add("g", DType::F32, 64, 96, 0.3f);
    l.model.add("u", DType::F32, 64, 96, 0.3f);
    l.model.add("d", DType::F32, 96, 64, 0.3f);
    const StageEntry& e = l.entry(StageKind::Ffn, "dense");
    CHECK(e.supports(l.context("ffn", {{"gate", "g"}, {"up", "u"}, {"down", "d"}})).empty());
    l.hp.ffn_act = Activation::Gelu;  // gated: GeGLU
    CHECK(e.supports(l.context("ffn", {{"gate", "g"}, {"up", "u"}, {"down", "d"}})).empty());
    l.hp.ffn_act = Activation::Silu;
    auto why = e.supports(l.context("ffn", {{"up", "u"}, {"down", "d"}}));
    REQUIRE(why.size() == 1);
    CHECK_THAT(why[0], Catch::Contains("no gate and the model's activation is silu"));
    why = e.supports(l.context("ffn", {{"gate", "nope"}}));
    REQUIRE(why.size() == 3);
    CHECK_THAT(why[0], Catch::Contains("no 'gate' weight"));
    CHECK_THROWS_WITH(e.make_stage(l.context("ffn", {{"gate", "nope"}})), Catch::Contains("'nope'"));
    l.hp.n_expert = 8;
    l.hp.n_expert_used = 2;
    why = e.supports(l.context("ffn", {{"gate", "g"}, {"up", "u"}, {"down", "d"}}));
    REQUIRE(why.size() == 1);
    CHECK_THAT(why[0], Catch::Contains("8 experts per layer") && Catch::Contains("use ffn/moe"));
  }
}
