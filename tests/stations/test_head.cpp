// head/dense on every backend: logits of the wanted rows only, in any order, from a separate
// output matrix or the tied token table, every weight dtype; Gemma 2's soft-capped logits; the
// embedding still reads a table the head has bound for itself; and the rows and weights it
// refuses. Tolerances as harness.h.
#include <catch2/catch.hpp>

#include <cmath>

#include "stations/harness.h"

using namespace semline;
using namespace semline::stationtest;
using testing::matvec;

TEMPLATE_TEST_CASE("head: logits of the wanted rows, in any order, separate or tied weights", "[stations][head]",
                   SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (bool tied : {false, true})
    for (DType dt : kAllWeights) {
      INFO(setup.name << ", " << (tied ? "tied" : "output matrix") << ", " << dtype_name(dt));
      Layer l(setup);
      l.model.add("token_embd", dt, 64, 67, 0.5f);
      if (!tied) l.model.add("output", dt, 64, 67, 0.5f);
      const Weight& w = l.model.values(tied ? "token_embd" : "output");
      // A head given both binds the output matrix when the model has one, else the tied table.
      auto head = l.build(StageKind::Head, "dense", l.context("head", {{"output", "output"}, {"tokens", "token_embd"}}));
      for (const std::vector<int32_t>& rows :
           {std::vector<int32_t>{4}, std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, std::vector<int32_t>{9, 2, 5}}) {
        StepData sd = rows_step(10);
        sd.outputs = rows;
        const Batch b = sd.batch();
        Rows x(l.be, 10, 64), out(l.be, std::vector<float>(rows.size() * 67, 0.0f), 67);
        head->forward(x.t, out.t, Step{b, l.be.stream(), nullptr});
        Vec want;
        for (int32_t r : rows) {
          const Vec y = matvec(w, x.row(r));
          want.insert(want.end(), y.begin(), y.end());
        }
        CHECK(rel_err(out.read(), want) <= l.weight_tol(dt));
      }
      if (!tied) continue;
      // The embedding reads the rows of a table the head has bound (repacked, copied) for itself,
      // from the file's layout: still exact.
      check_lookup(l, w, {66, 3});
    }
}

TEMPLATE_TEST_CASE("head: soft-capped logits, cap * tanh(logit / cap) (Gemma 2)", "[stations][head][gemma2]",
                   SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (DType dt : {DType::F32, DType::Q8_0}) {
    INFO(setup.name << ", " << dtype_name(dt));
    Layer l(setup);
    const double cap = 1.5;  // below the logits' spread: the cap bends most of them
    l.hp.extra["final_logit_softcap"] = cap;
    const Weight& w = l.model.add("token_embd", dt, 64, 67, 1.0f);
    auto head = l.build(StageKind::Head, "dense", l.context("head", {{"tokens", "token_embd"}}));
    StepData sd = rows_step(3);
    sd.outputs = {2, 0};
    const Batch b = sd.batch();
    Rows x(l.be, 3, 64), out(l.be, 2, 67);
    head->forward(x.t, out.t, Step{b, l.be.stream(), nullptr});
    Vec want, uncapped;
    for (int32_t r : sd.outputs) {
      const Vec y = matvec(w, x.row(r));
      for (double v : y) {
        want.push_back(cap * std::tanh(v / cap));
        uncapped.push_back(v);
      }
    }
    CHECK(rel_err(out.read(), want) <= l.weight_tol(dt));
    CHECK(rel_err(out.read(), uncapped) > 0.1);
  }
}

TEMPLATE_TEST_CASE("head refuses a wrongly shaped output matrix, output rows outside the batch and no backend",
                   "[stations][head][errors]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup) {
    INFO(setup.name);
    Layer l(setup);
    l.model.add("token_embd", DType::F32, 64, 67, 1.0f);
    l.model.add("short", DType::F32, 64, 63, 1.0f);
    CHECK_THROWS_WITH(l.build(StageKind::Head, "dense", l.context("head", {{"output", "short"}})),
                      Catch::Contains("tensor 'short' (output) has shape F32 [64, 63], expected [64, 67]"));
    auto head = l.build(StageKind::Head, "dense", l.context("head", {{"tokens", "token_embd"}}));
    StepData sd = rows_step(2);
    sd.outputs = {2};
    const Batch b = sd.batch();
    Rows x(l.be, 2, 64), logits(l.be, 1, 67);
    CHECK_THROWS_WITH(head->forward(x.t, logits.t, Step{b, l.be.stream(), nullptr}),
                      Catch::Contains("output row 2 is outside the batch of 2 tokens"));
    StageContext no_backend = l.context("head", {{"tokens", "token_embd"}});
    no_backend.backend = nullptr;
    CHECK_THROWS_WITH(l.entry(StageKind::Head, "dense").make_stage(no_backend),
                      Catch::Contains("need the " + l.backend_name() + " backend"));
  }
}
