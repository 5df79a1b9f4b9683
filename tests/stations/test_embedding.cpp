// embedding/lookup on every backend: token rows dequantised exactly, learned position rows added
// (float addition is correctly rounded: the float sum of two exact rows, bit for bit), Gemma's
// embedding scale (one float product per value: bit for bit too), and the ids, positions and
// output modes it refuses.
#include <catch2/catch.hpp>

#include <cmath>

#include <semline/codec.h>

#include "stations/harness.h"

using namespace semline;
using namespace semline::stationtest;

TEMPLATE_TEST_CASE("embedding: rows of the token table, dequantised exactly", "[stations][embedding]",
                   SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (DType dt : kAllWeights) {
    INFO(setup.name << ", " << dtype_name(dt));
    Layer l(setup);
    const Weight& table = l.model.add("token_embd", dt, 64, 67, 1.0f);
    auto emb = check_lookup(l, table, {0, 66, 5, 5, 31});
    StepData sd = rows_step(5, {0, 66, 67, 5, 31});
    const Batch bad = sd.batch();
    Rows unused(l.be, 5, 64), out(l.be, 5, 64);
    CHECK_THROWS_WITH(emb->forward(unused.t, out.t, Step{bad, l.be.stream(), nullptr}),
                      Catch::Contains("token id 67 at batch row 2 is outside the vocabulary [0, 67)"));
  }
}

TEMPLATE_TEST_CASE("embedding: token rows plus learned position rows by each token's position",
                   "[stations][embedding][gpt2]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (DType dt : kAllWeights)
    for (DType pdt : {DType::F32, DType::F16}) {
      INFO(setup.name << ", tokens " << dtype_name(dt) << ", positions " << dtype_name(pdt));
      Layer l(setup);
      const Weight& table = l.model.add("token_embd", dt, 64, 67, 1.0f);
      const Weight& positions = l.model.add("position_embd", pdt, 64, 16, 1.0f);
      auto emb = l.build(StageKind::Embedding, "lookup",
                         l.context("embedding", {{"tokens", "token_embd"}, {"positions", "position_embd"}}));
      StepData sd;
      sd.tokens = {0, 66, 5, 5, 31, 9};
      sd.pos = {3, 15, 0, 7, 7, 1};  // any order, repeats: two sequences' rows in one step
      sd.seq = {0, 0, 1, 1, 0, 1};
      sd.tables = {{0}, {1}};
      const Batch b = sd.batch();
      Rows unused(l.be, 6, 64), out(l.be, 6, 64);
      emb->forward(unused.t, out.t, Step{b, l.be.stream(), nullptr});
      const std::vector<float> got = out.read();
      for (int64_t t = 0; t < 6; ++t)
        for (int64_t i = 0; i < 64; ++i)
          REQUIRE(got[t * 64 + i] == static_cast<float>(table.value[sd.tokens[t] * 64 + i]) +
                                         static_cast<float>(positions.value[sd.pos[t] * 64 + i]));
      sd.pos[4] = 16;
      const Batch past = sd.batch();
      CHECK_THROWS_WITH(emb->forward(unused.t, out.t, Step{past, l.be.stream(), nullptr}),
                        Catch::Contains("position 16 at batch row 4 is past the model's 16 learned positions"));
    }
}

TEMPLATE_TEST_CASE("embedding: rows times the model's embedding scale (Gemma), and no write or add mode",
                   "[stations][embedding][gemma2]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (DType dt : {DType::F32, DType::BF16, DType::Q8_0}) {
    INFO(setup.name << ", " << dtype_name(dt));
    Layer l(setup);
    const float scale = std::sqrt(64.0f);
    l.hp.extra["embedding_scale"] = scale;
    const Weight& table = l.model.add("token_embd", dt, 64, 67, 1.0f);
    auto emb = l.build(StageKind::Embedding, "lookup", l.context("embedding", {{"tokens", "token_embd"}}));
    const std::vector<int32_t> tokens = {3, 66, 3, 0};
    StepData sd = rows_step(4, tokens);
    const Batch b = sd.batch();
    Rows unused(l.be, 4, 64), out(l.be, 4, 64);
    emb->forward(unused.t, out.t, Step{b, l.be.stream(), nullptr});
    const std::vector<float> got = out.read();
    for (int64_t t = 0; t < 4; ++t)
      for (int64_t i = 0; i < 64; ++i)
        REQUIRE(got[t * 64 + i] == static_cast<float>(table.value[tokens[t] * 64 + i]) * scale);
    CHECK_THROWS_WITH(emb->forward(unused.t, out.t, Step{b, l.be.stream(), nullptr, OutMode::Add}),
                      Catch::Contains("the line asks it to add its result"));
  }
}
