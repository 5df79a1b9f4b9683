// The cpu stages, built through their registry entries on a small in-memory llama layer with GQA,
// against the float64 references of stage_fixtures.h (its header states the tolerances).
// flash == dense: 1e-5 (1e-2 with Q8_0 / Q4_0 weights, see below).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>

#include <semline/codec.h>

#include "backend/cpu_backend.h"
#include "cpu/cpu_test_util.h"
#include "cpu/stage_fixtures.h"
#include "ops/linear.h"
#include "stations/binding.h"

using namespace semline;
using namespace semline::cpu;
using namespace semline::cputest;

TEST_CASE("attention: prefill, decodes, mixed sequences, shared prefixes, F16 cache, flash == dense", "[stages]") {
  // One script of steps over a paged cache of 4-position blocks whose block tables are scattered;
  // sequence 2 starts at position 8 on the first two blocks of sequence 0 (a shared prefix).
  struct Script {
    std::vector<int32_t> pos;
    std::vector<int32_t> seq;
  };
  const std::vector<Script> script = {
      {{0, 1, 2, 3, 4, 5}, {0, 0, 0, 0, 0, 0}},        // prefill
      {{6}, {0}},                                      // decode
      {{7, 8, 9, 10, 0, 1, 2}, {0, 0, 0, 0, 1, 1, 1}},  // a chunk not starting at 0, and a new sequence
      {{3, 11}, {1, 0}},                               // two decodes, sequences in either order
      {{12}, {0}},
      {{8, 9}, {2, 2}},                                // positions 0..7 come from sequence 0's blocks
  };
  const std::vector<std::vector<int32_t>> tables = {{5, 2, 7, 0, 9}, {1, 3, 11, 4}, {5, 2, 13}};

  for (Isa isa : runnable_isas())
  for (RopeType rope_type : {RopeType::Normal, RopeType::NeoX})
    for (int64_t rope_dim : {8, 4})
      for (DType wdt : kAllWeights)
        for (DType cdt : {DType::F32, DType::F16}) {
          INFO(isa_name(isa) << " kernels, rope " << (rope_type == RopeType::NeoX ? "neox" : "normal") << " dim "
                             << rope_dim << ", weights " << dtype_name(wdt) << ", cache " << dtype_name(cdt));
          Layer l(rope_type, rope_dim, isa);
          add_attention_weights(l, wdt);
          auto dense = build(StageKind::Attention, "dense", l.context("attn", kAttnTensors));
          auto flash = build(StageKind::Attention, "flash", l.context("attn", kAttnTensors), {{"block", int64_t{3}}});
          auto flash64 = build(StageKind::Attention, "flash", l.context("attn", kAttnTensors));
          Cache cd(l.be, l.hp, cdt, 4, 16), cf(l.be, l.hp, cdt, 4, 16), cf64(l.be, l.hp, cdt, 4, 16);
          RefAttention ref{l.hp, separate(l.model.values("q"), l.model.values("k"), l.model.values("v")),
                           l.model.values("o"), nullptr, cdt == DType::F16, {}};
          ref.kv[2];  // sequence 2 is seeded from sequence 0's first 8 positions below
          const double tol = std::max(weight_tol(wdt), cdt == DType::F16 ? 2e-3 : 0.0);
          // With a block-quantised W_o, the 1e-7 differences between the variants' attention rows
          // can move an activation across a rounding step of its 8-bit quantisation.
          const double same_tol = takes_quantized_input(wdt) ? 1e-2 : 1e-5;

          for (size_t s = 0; s < script.size(); ++s) {
            INFO("step " << s);
            StepData sd;
            sd.pos = script[s].pos;
            sd.seq = script[s].seq;
            sd.tables = tables;
            const Batch b = sd.batch();
            const int64_t m = b.n_tokens;
            Rowset x(m, l.hp.n_embd);
            if (s == 5)
              for (int32_t p = 0; p < 8; ++p) ref.kv[2][p] = ref.kv.at(0).at(p);
            std::vector<Vec> xr;
            for (int64_t t = 0; t < m; ++t) xr.push_back(x.row(t));
            std::vector<int> seqs(sd.seq.begin(), sd.seq.end());
            const std::vector<Vec> want = ref.step(xr, sd.pos, seqs);

            Rowset od(m, l.hp.n_embd), of(m, l.hp.n_embd), of64(m, l.hp.n_embd);
            const Rowset start = od;
            of.data = od.data;
            of64.data = od.data;
            dense->forward(x.tensor(), od.tensor(), Step{b, l.be.stream(), &cd.layer});
            flash->forward(x.tensor(), of.tensor(), Step{b, l.be.stream(), &cf.layer});
            flash64->forward(x.tensor(), of64.tensor(), Step{b, l.be.stream(), &cf64.layer});
            Vec wv, gd, gf, gf64;
            for (int64_t t = 0; t < m; ++t)
              for (int64_t i = 0; i < l.hp.n_embd; ++i) {
                const size_t at = static_cast<size_t>(t * l.hp.n_embd + i);
                wv.push_back(want[t][i]);
                gd.push_back(static_cast<double>(od.data[at]) - start.data[at]);
                gf.push_back(static_cast<double>(of.data[at]) - start.data[at]);
                gf64.push_back(static_cast<double>(of64.data[at]) - start.data[at]);
              }
            CHECK(rel_err(gd, wv) <= tol);
            CHECK(rel_err(gf, wv) <= tol);
            CHECK(rel_err(gf, gd) <= same_tol);
            CHECK(rel_err(gf64, gd) <= same_tol);
          }
        }
}

TEST_CASE("attention: a fused qkv map with biases and no rotary embedding (GPT-2), dense and flash", "[stages]") {
  struct Script {
    std::vector<int32_t> pos, seq;
  };
  const std::vector<Script> script = {
      {{0, 1, 2, 3, 4}, {0, 0, 0, 0, 0}},     // prefill
      {{5}, {0}},                             // decode
      {{6, 7, 0, 1, 2}, {0, 0, 1, 1, 1}},     // a chunk of one sequence and a new one
      {{3, 8}, {1, 0}},
  };
  const std::vector<std::vector<int32_t>> tables = {{3, 0, 5}, {1, 4}};
  for (Isa isa : runnable_isas())
    for (DType wdt : kAllWeights) {
      INFO(isa_name(isa) << " kernels, weights " << dtype_name(wdt));
      Layer l(RopeType::None, 0, isa);
      const int64_t qd = l.hp.n_head * l.hp.head_dim, kd = l.hp.n_head_kv * l.hp.head_dim;
      const Weight& qkv = l.model.add("qkv", wdt, l.hp.n_embd, qd + 2 * kd, 0.3f);
      const Weight& qkv_b = l.model.add("qkv_b", DType::F32, qd + 2 * kd, 1, 0.5f);
      const Weight& o = l.model.add("o", wdt, qd, l.hp.n_embd, 0.3f);
      const Weight& o_b = l.model.add("o_b", DType::F16, l.hp.n_embd, 1, 0.5f);
      const std::vector<std::pair<std::string, std::string>> tensors = {
          {"qkv", "qkv"}, {"qkv_bias", "qkv_b"}, {"o", "o"}, {"o_bias", "o_b"}};
      auto dense = build(StageKind::Attention, "dense", l.context("attn", tensors));
      auto flash = build(StageKind::Attention, "flash", l.context("attn", tensors), {{"block", int64_t{3}}});
      Cache cd(l.be, l.hp, DType::F32, 4, 8), cf(l.be, l.hp, DType::F32, 4, 8);
      RefAttention ref{l.hp, fused(qkv, &qkv_b, qd, kd), o, &o_b, false, {}};
      for (size_t s = 0; s < script.size(); ++s) {
        INFO("step " << s);
        StepData sd;
        sd.pos = script[s].pos;
        sd.seq = script[s].seq;
        sd.tables = tables;
        const Batch b = sd.batch();
        const int64_t m = b.n_tokens;
        Rowset x(m, l.hp.n_embd), od(m, l.hp.n_embd), of(m, l.hp.n_embd);
        of.data = od.data;
        const Rowset start = od;
        std::vector<Vec> xr;
        for (int64_t t = 0; t < m; ++t) xr.push_back(x.row(t));
        const std::vector<Vec> want = ref.step(xr, sd.pos, std::vector<int>(sd.seq.begin(), sd.seq.end()));
        dense->forward(x.tensor(), od.tensor(), Step{b, l.be.stream(), &cd.layer});
        flash->forward(x.tensor(), of.tensor(), Step{b, l.be.stream(), &cf.layer});
        Vec wv, gd, gf;
        for (int64_t t = 0; t < m; ++t)
          for (int64_t i = 0; i < l.hp.n_embd; ++i) {
            const size_t at = static_cast<size_t>(t * l.hp.n_embd + i);
            wv.push_back(want[t][i]);
            gd.push_back(static_cast<double>(od.data[at]) - start.data[at]);
            gf.push_back(static_cast<double>(of.data[at]) - start.data[at]);
          }
        CHECK(rel_err(gd, wv) <= weight_tol(wdt));
        CHECK(rel_err(gf, wv) <= weight_tol(wdt));
      }
    }
}

TEST_CASE("attention writes this step's keys (rotated) and values into the cache slots of their positions",
          "[stages]") {
  for (DType cdt : {DType::F32, DType::F16}) {
    INFO("cache " << dtype_name(cdt));
    Layer l;
    add_attention_weights(l, DType::F32);
    auto flash = build(StageKind::Attention, "flash", l.context("attn", kAttnTensors));
    Cache c(l.be, l.hp, cdt, 4, 8);
    StepData sd;
    sd.pos = {3, 4, 5, 6, 7};  // a chunk that starts inside a block, then crosses into the next
    sd.seq = {0, 0, 0, 0, 0};
    sd.tables = {{6, 3}};
    const Batch b = sd.batch();
    Rowset x(5, 64), out(5, 64);
    flash->forward(x.tensor(), out.tensor(), Step{b, l.be.stream(), &c.layer});
    // The reference's cache after the same step: keys rotated at their positions, both rounded
    // to F16 for an F16 cache.
    RefAttention ref{l.hp, separate(l.model.values("q"), l.model.values("k"), l.model.values("v")),
                     l.model.values("o"), nullptr, cdt == DType::F16, {}};
    const int64_t slot_values = l.hp.n_head_kv * l.hp.head_dim;  // one position's keys (or values)
    for (int32_t p = 0; p < 3; ++p) ref.kv[0][p] = {Vec(slot_values, 0.0), Vec(slot_values, 0.0)};  // the empty slots
    std::vector<Vec> xr;
    for (int64_t t = 0; t < 5; ++t) xr.push_back(x.row(t));
    ref.step(xr, sd.pos, {0, 0, 0, 0, 0});
    auto stored = [&](const Tensor& t, int64_t blk, int64_t slot, int64_t i) -> double {
      const int64_t at = (blk * 4 + slot) * slot_values + i;
      return cdt == DType::F32 ? static_cast<const float*>(t.host)[at]
                               : f16_to_f32(static_cast<const uint16_t*>(t.host)[at]);
    };
    const double tol = cdt == DType::F16 ? 1e-3 : 1e-5;  // one F16 rounding step may fall either way
    for (int32_t p : sd.pos) {
      INFO("position " << p);
      const auto& [want_k, want_v] = ref.kv.at(0).at(p);
      const int64_t blk = p < 4 ? 6 : 3, slot = p % 4;
      Vec got_k, got_v;
      for (int64_t i = 0; i < slot_values; ++i) {
        got_k.push_back(stored(c.layer.k, blk, slot, i));
        got_v.push_back(stored(c.layer.v, blk, slot, i));
      }
      CHECK(rel_err(got_k, want_k) <= tol);
      CHECK(rel_err(got_v, want_v) <= tol);
      if (p > 0) CHECK(rel_err(got_k, matvec(l.model.values("k"), x.row(p - sd.pos[0]))) > 1e-2);  // really rotated
    }
    // Slots the step did not write, and blocks the table does not name, stay untouched.
    for (int64_t blk : {0, 6})
      for (int64_t slot = 0; slot < (blk == 6 ? 3 : 4); ++slot)
        for (int64_t i = 0; i < slot_values; ++i) {
          INFO("block " << blk << " slot " << slot);
          REQUIRE(stored(c.layer.k, blk, slot, i) == 0.0);
          REQUIRE(stored(c.layer.v, blk, slot, i) == 0.0);
        }
  }
}

TEST_CASE("ffn: out += down(silu(gate x) * up x) for every weight dtype", "[stages]") {
  for (Isa isa : runnable_isas())
  for (DType dt : kAllWeights)
    for (int64_t m : {1, 5, 16}) {
      INFO(isa_name(isa) << " kernels, " << dtype_name(dt) << ", " << m << " rows");
      Layer l(RopeType::Normal, 8, isa);
      const Weight& g = l.model.add("gate", dt, 64, 96, 0.3f);
      const Weight& u = l.model.add("up", dt, 64, 96, 0.3f);
      const Weight& d = l.model.add("down", dt, 96, 64, 0.3f);
      auto ffn = build(StageKind::Ffn, "dense", l.context("ffn", {{"gate", "gate"}, {"up", "up"}, {"down", "down"}}));
      StepData sd;
      sd.pos.assign(static_cast<size_t>(m), 0);
      sd.seq.assign(static_cast<size_t>(m), 0);
      const Batch b = sd.batch();
      Rowset x(m, 64), out(m, 64);
      const Rowset start = out;
      ffn->forward(x.tensor(), out.tensor(), Step{b, l.be.stream(), nullptr});
      Vec got, want;
      for (int64_t t = 0; t < m; ++t) {
        const Vec gx = matvec(g, x.row(t)), ux = matvec(u, x.row(t));
        Vec h(gx.size());
        for (size_t i = 0; i < h.size(); ++i) h[i] = gx[i] / (1 + std::exp(-gx[i])) * ux[i];
        const Vec y = matvec(d, h);
        for (int64_t i = 0; i < 64; ++i) {
          want.push_back(y[i]);
          got.push_back(static_cast<double>(out.data[t * 64 + i]) - start.data[t * 64 + i]);
        }
      }
      CHECK(rel_err(got, want) <= weight_tol(dt));
    }
}

TEST_CASE("ffn: out += down(gelu(up x + b_up)) + b_down, exact and tanh GELU, every weight dtype", "[stages]") {
  for (Isa isa : runnable_isas())
    for (Activation act : {Activation::Gelu, Activation::GeluTanh})
      for (DType dt : kAllWeights)
        for (int64_t m : {1, 5}) {
          INFO(isa_name(isa) << " kernels, " << (act == Activation::Gelu ? "gelu" : "gelu_tanh") << ", "
                             << dtype_name(dt) << ", " << m << " rows");
          Layer l(RopeType::Normal, 8, isa);
          l.hp.ffn_act = act;
          const Weight& u = l.model.add("up", dt, 64, 96, 0.3f);
          const Weight& ub = l.model.add("up_b", DType::F32, 96, 1, 1.0f);
          const Weight& d = l.model.add("down", dt, 96, 64, 0.3f);
          const Weight& db = l.model.add("down_b", DType::BF16, 64, 1, 1.0f);
          auto ffn = build(StageKind::Ffn, "dense",
                           l.context("ffn", {{"up", "up"}, {"up_bias", "up_b"}, {"down", "down"}, {"down_bias", "down_b"}}));
          StepData sd;
          sd.pos.assign(static_cast<size_t>(m), 0);
          sd.seq.assign(static_cast<size_t>(m), 0);
          const Batch b = sd.batch();
          Rowset x(m, 64), out(m, 64);
          const Rowset start = out;
          ffn->forward(x.tensor(), out.tensor(), Step{b, l.be.stream(), nullptr});
          Vec got, want;
          for (int64_t t = 0; t < m; ++t) {
            Vec h = plus(matvec(u, x.row(t)), &ub);
            for (double& v : h) {
              const double z = std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v);
              v = act == Activation::Gelu ? 0.5 * v * std::erfc(-v / std::sqrt(2.0)) : 0.5 * v * (1.0 + std::tanh(z));
            }
            const Vec y = plus(matvec(d, h), &db);
            for (int64_t i = 0; i < 64; ++i) {
              want.push_back(y[i]);
              got.push_back(static_cast<double>(out.data[t * 64 + i]) - start.data[t * 64 + i]);
            }
          }
          CHECK(rel_err(got, want) <= weight_tol(dt));
        }
}

TEST_CASE("ffn/dense refuses a gate with GELU and an ungated silu", "[stages]") {
  Layer l;
  l.model.add("g", DType::F32, 64, 96, 0.3f);
  l.model.add("u", DType::F32, 64, 96, 0.3f);
  l.model.add("d", DType::F32, 96, 64, 0.3f);
  const StageEntry& e = cpu_entries().stage(StageKind::Ffn, "dense");
  l.hp.ffn_act = Activation::Gelu;
  auto why = e.supports(l.context("ffn", {{"gate", "g"}, {"up", "u"}, {"down", "d"}}));
  REQUIRE(why.size() == 1);
  CHECK(why[0].find("GeGLU") != std::string::npos);
  l.hp.ffn_act = Activation::Silu;
  why = e.supports(l.context("ffn", {{"up", "u"}, {"down", "d"}}));
  REQUIRE(why.size() == 1);
  CHECK(why[0].find("no gate and the model's activation is silu") != std::string::npos);
}

TEST_CASE("norm: layer with a learned scale and shift, rms refuses a shift", "[stages]") {
  for (Isa isa : runnable_isas())
    for (DType dt : {DType::F32, DType::F16})
      for (bool shift : {true, false}) {
        INFO(isa_name(isa) << " kernels, " << dtype_name(dt) << (shift ? ", with bias" : ", no bias"));
        Layer l(RopeType::Normal, 8, isa);
        const Weight& w = l.model.add("norm", dt, 64, 1, 1.0f);
        const Weight& bias = l.model.add("norm_b", dt, 64, 1, 1.0f);
        std::vector<std::pair<std::string, std::string>> tensors = {{"weight", "norm"}};
        if (shift) tensors.emplace_back("bias", "norm_b");
        auto norm = build(StageKind::Norm, "layer", l.context("attn_norm", tensors));
        StepData sd;
        sd.pos = {0, 1, 2};
        sd.seq = {0, 0, 0};
        const Batch b = sd.batch();
        Rowset x(3, 64, 3.0f), out(3, 64);
        for (float& v : x.data) v += 5.0f;  // a mean away from 0
        norm->forward(x.tensor(), out.tensor(), Step{b, l.be.stream(), nullptr});
        Vec got, want;
        for (int64_t t = 0; t < 3; ++t) {
          const Vec r = x.row(t);
          double mean = 0, var = 0;
          for (double v : r) mean += v / 64;
          for (double v : r) var += (v - mean) * (v - mean) / 64;
          for (int64_t i = 0; i < 64; ++i)
            want.push_back((r[i] - mean) / std::sqrt(var + l.hp.norm_eps) * w.value[i] + (shift ? bias.value[i] : 0.0));
          const Vec o = out.row(t);
          got.insert(got.end(), o.begin(), o.end());
        }
        CHECK(rel_err(got, want) <= 1e-5);
      }
  Layer l;
  l.model.add("norm", DType::F32, 64, 1, 1.0f);
  l.model.add("norm_b", DType::F32, 64, 1, 1.0f);
  const auto why = cpu_entries().stage(StageKind::Norm, "rms").supports(
      l.context("attn_norm", {{"weight", "norm"}, {"bias", "norm_b"}}));
  REQUIRE(why.size() == 1);
  CHECK(why[0].find("it is a LayerNorm") != std::string::npos);
}

TEST_CASE("norm: rms with a learned scale", "[stages]") {
  for (DType dt : {DType::F32, DType::F16}) {
    Layer l;
    const Weight& w = l.model.add("norm", dt, 64, 1, 1.0f);
    auto norm = build(StageKind::Norm, "rms", l.context("attn_norm", {{"weight", "norm"}}));
    StepData sd;
    sd.pos = {0, 1, 2};
    sd.seq = {0, 0, 0};
    const Batch b = sd.batch();
    Rowset x(3, 64, 3.0f), out(3, 64);
    norm->forward(x.tensor(), out.tensor(), Step{b, l.be.stream(), nullptr});
    Vec got, want;
    for (int64_t t = 0; t < 3; ++t) {
      const Vec y = rmsnorm(x.row(t), w, l.hp.norm_eps);
      want.insert(want.end(), y.begin(), y.end());
      const Vec o = out.row(t);
      got.insert(got.end(), o.begin(), o.end());
    }
    CHECK(rel_err(got, want) <= 1e-5);
  }
}

TEST_CASE("embedding: rows of the token table, dequantised exactly", "[stages]") {
  for (DType dt : kAllWeights) {
    INFO(dtype_name(dt));
    Layer l;
    const Weight& table = l.model.add("token_embd", dt, 64, 67, 1.0f);
    auto emb = build(StageKind::Embedding, "lookup", l.context("embedding", {{"tokens", "token_embd"}}));
    StepData sd;
    sd.tokens = {0, 66, 5, 5, 31};
    sd.pos = {0, 1, 2, 3, 4};
    sd.seq = {0, 0, 0, 0, 0};
    const Batch b = sd.batch();
    Rowset unused(5, 64), out(5, 64);
    emb->forward(unused.tensor(), out.tensor(), Step{b, l.be.stream(), nullptr});
    for (int64_t t = 0; t < 5; ++t)
      for (int64_t i = 0; i < 64; ++i)
        REQUIRE(out.data[t * 64 + i] == static_cast<float>(table.value[sd.tokens[t] * 64 + i]));
  }
}

TEST_CASE("embedding: token rows plus learned position rows, a position past the table is refused", "[stages]") {
  for (DType dt : kAllWeights) {
    INFO(dtype_name(dt));
    Layer l;
    const Weight& table = l.model.add("token_embd", dt, 64, 67, 1.0f);
    const Weight& positions = l.model.add("position_embd", dt == DType::F32 ? DType::F16 : DType::F32, 64, 6, 1.0f);
    auto emb = build(StageKind::Embedding, "lookup",
                     l.context("embedding", {{"tokens", "token_embd"}, {"positions", "position_embd"}}));
    StepData sd;
    sd.tokens = {7, 66, 5, 5};
    sd.pos = {0, 5, 2, 3};
    sd.seq = {0, 0, 1, 1};
    sd.tables = {{0}, {1}};
    const Batch b = sd.batch();
    Rowset unused(4, 64), out(4, 64);
    emb->forward(unused.tensor(), out.tensor(), Step{b, l.be.stream(), nullptr});
    // Float addition is correctly rounded: the float of the exact sum, no tolerance.
    for (int64_t t = 0; t < 4; ++t)
      for (int64_t i = 0; i < 64; ++i)
        REQUIRE(out.data[t * 64 + i] ==
                static_cast<float>(table.value[sd.tokens[t] * 64 + i] + positions.value[sd.pos[t] * 64 + i]));
    sd.pos = {0, 6, 2, 3};
    const Batch past = sd.batch();
    REQUIRE_THROWS_WITH(emb->forward(unused.tensor(), out.tensor(), Step{past, l.be.stream(), nullptr}),
                        Catch::Contains("position 6 at batch row 1 is past the model's 6 learned positions"));
  }
}

TEST_CASE("head: logits of the output rows only, separate or tied weights", "[stages]") {
  for (Isa isa : runnable_isas())
  for (DType dt : kAllWeights)
    for (bool tied : {false, true}) {
      INFO(isa_name(isa) << " kernels, " << dtype_name(dt) << (tied ? ", tied" : ", separate"));
      Layer l(RopeType::Normal, 8, isa);
      l.model.add("token_embd", dt, 64, 67, 0.5f);
      if (!tied) l.model.add("output", dt, 64, 67, 0.5f);
      const Weight& w = l.model.values(tied ? "token_embd" : "output");
      auto head = build(StageKind::Head, "dense", l.context("head", {{"output", "output"}, {"tokens", "token_embd"}}));
      StepData sd;
      sd.pos = {0, 1, 2, 3, 4};
      sd.seq = {0, 0, 0, 0, 0};
      sd.outputs = {1, 4};
      const Batch b = sd.batch();
      Rowset x(5, 64), out(2, 67);
      head->forward(x.tensor(), out.tensor(), Step{b, l.be.stream(), nullptr});
      Vec got(out.data.begin(), out.data.end()), want;
      for (int32_t r : sd.outputs) {
        const Vec y = matvec(w, x.row(r));
        want.insert(want.end(), y.begin(), y.end());
      }
      CHECK(rel_err(got, want) <= weight_tol(dt));
      if (!tied) continue;
      // The embedding reads the rows of the table the head has repacked for itself, from the
      // file's layout: still exact.
      auto emb = build(StageKind::Embedding, "lookup", l.context("embedding", {{"tokens", "token_embd"}}));
      StepData se;
      se.tokens = {66, 3};
      se.pos = {0, 1};
      se.seq = {0, 0};
      const Batch eb = se.batch();
      Rowset unused(2, 64), rows(2, 64);
      emb->forward(unused.tensor(), rows.tensor(), Step{eb, l.be.stream(), nullptr});
      for (int64_t t = 0; t < 2; ++t)
        for (int64_t i = 0; i < 64; ++i) REQUIRE(rows.data[t * 64 + i] == static_cast<float>(w.value[se.tokens[t] * 64 + i]));
    }
}

TEST_CASE("linear maps as the stages bind them: repacked under AVX-512, partial tiles, expert slices", "[stages]") {
  // A map of 67 rows (a partial last tile), one of 130 rows over a single block, and the slices of
  // a stack of 3 experts of 67 rows (each slice starts inside a 16-row tile of the stack), run
  // side by side in one dispatch over 3 threads, against float64, overwriting and accumulating.
  for (Isa isa : runnable_isas())
    for (DType dt : kAllWeights) {
      Layer l(RopeType::Normal, 8, isa);
      const Weight& w = l.model.add("w", dt, 64, 67, 0.5f);
      const Weight& one = l.model.add("one", dt, 32, 130, 0.5f);
      const Weight& exps = l.model.add_experts("exps", dt, 64, 67, 3, 0.5f);
      const StageContext ctx = l.context("ffn", {{"w", "w"}, {"one", "one"}, {"exps", "exps"}});
      // As the cpu kernels bind them: a map over the checked view, one per expert at its offset.
      auto over = [&](const Tensor& v, int64_t e) {
        return Linear::over(l.be, v.dtype, v.ne[0], v.ne[1], static_cast<const char*>(v.host) + e * v.nb[2],
                            static_cast<size_t>(v.nb[1]));
      };
      const Tensor vexps = stations::weight_view(ctx, "exps", {64, 67, 3}, "(n_in, n_out, n_expert)");
      const Linear lw = over(stations::weight_view(ctx, "w", {64, 67}, "(n_in, n_out)"), 0);
      const Linear lone = over(stations::weight_view(ctx, "one", {32, 130}, "(n_in, n_out)"), 0);
      const Linear le[3] = {over(vexps, 0), over(vexps, 1), over(vexps, 2)};
      const bool repacked = isa == Isa::Avx512 && takes_quantized_input(dt);
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
          quantize_rows(l.be, x.data.data(), 64, m, 64, xq);
          quantize_rows(l.be, x32.data.data(), 32, m, 32, xq32);
        }
        const Rows in{x.data.data(), 64, quant ? &xq : nullptr}, in32{x32.data.data(), 32, quant ? &xq32 : nullptr};
        for (int64_t e = 0; e < 3; ++e) {
          const bool acc = (m + e) % 2 == 1;
          const Rowset y0 = y, y320 = y32, ye0 = ye;
          const MatOp ops[3] = {{&lw, in, y.data.data(), 67, acc}, {&lone, in32, y32.data.data(), 130, !acc},
                                {&le[e], in, ye.data.data(), 67, acc}};
          run_matmuls(l.be, ops, 3, m);
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
          CHECK(rel_err(got, want) <= weight_tol(dt));
        }
      }
    }
}

TEST_CASE("stages refuse bad input with one clear error and stay usable", "[stages][errors]") {
  Layer l;
  add_attention_weights(l, DType::F32);
  l.model.add("token_embd", DType::F32, 64, 67, 1.0f);
  l.model.add("short", DType::F32, 64, 63, 1.0f);
  auto attn = build(StageKind::Attention, "flash", l.context("attn", kAttnTensors, 4));
  Cache c(l.be, l.hp, DType::F32, 4, 4);
  Rowset x(6, 64), out(6, 64);

  auto run = [&](std::vector<int32_t> pos, std::vector<int32_t> seq, std::vector<std::vector<int32_t>> tables,
                 const KvLayer* kv) {
    StepData sd;
    sd.pos = std::move(pos);
    sd.seq = std::move(seq);
    sd.tables = std::move(tables);
    const Batch b = sd.batch();
    attn->forward(x.tensor(), out.tensor(), Step{b, l.be.stream(), kv});
  };
  REQUIRE_THROWS_WITH(run({0}, {1}, {{0}}, &c.layer), Catch::Contains("names sequence 1 but the batch has 1"));
  REQUIRE_THROWS_WITH(run({-1}, {0}, {{0}}, &c.layer), Catch::Contains("negative position -1"));
  REQUIRE_THROWS_WITH(run({8}, {0}, {{0, 1}}, &c.layer), Catch::Contains("needs entry 2 of the block table"));
  REQUIRE_THROWS_WITH(run({5}, {0}, {{0, 4}}, &c.layer), Catch::Contains("is cache block 4, but the cache has 4"));
  REQUIRE_THROWS_WITH(run({0, 1, 2, 3, 4}, {0, 0, 0, 0, 0}, {{0, 1}}, &c.layer),
                      Catch::Contains("batch of 5 tokens exceeds max_batch_tokens 4"));
  REQUIRE_THROWS_WITH(run({0}, {0}, {{0}}, nullptr), Catch::Contains("no KV cache"));
  Cache wrong(l.be, l.hp, DType::F32, 4, 4);
  wrong.layer.k.ne[1] = 1;
  REQUIRE_THROWS_WITH(run({0}, {0}, {{0}}, &wrong.layer), Catch::Contains("KV cache k must be F32 or F16"));
  run({0, 1}, {0, 0}, {{0}}, &c.layer);  // still usable after the errors

  REQUIRE_THROWS_WITH(build(StageKind::Head, "dense", l.context("head", {{"output", "short"}})),
                      Catch::Contains("tensor 'short' (output) has shape F32 [64, 63], expected [64, 67]"));
  // A station without its dense weights is refused by supports(), and the factory itself names
  // the tensor it cannot find.
  const StageEntry& ffn = cpu_entries().stage(StageKind::Ffn, "dense");
  const auto ffn_why = ffn.supports(l.context("ffn", {{"gate", "nope"}}));
  REQUIRE(ffn_why.size() == 3);
  CHECK_THAT(ffn_why[0], Catch::Contains("no 'gate' weight"));
  REQUIRE_THROWS_WITH(ffn.make_stage(l.context("ffn", {{"gate", "nope"}})), Catch::Contains("'nope'"));
  StageContext no_backend = l.context("head", {{"tokens", "token_embd"}});
  no_backend.backend = nullptr;
  REQUIRE_THROWS_WITH(build(StageKind::Head, "dense", no_backend), Catch::Contains("need the cpu backend"));

  auto emb = build(StageKind::Embedding, "lookup", l.context("embedding", {{"tokens", "token_embd"}}));
  StepData sd;
  sd.tokens = {3, 67};
  sd.pos = {0, 1};
  sd.seq = {0, 0};
  const Batch b = sd.batch();
  REQUIRE_THROWS_WITH(emb->forward(x.tensor(), out.tensor(), Step{b, l.be.stream(), nullptr}),
                      Catch::Contains("token id 67 at batch row 1 is outside the vocabulary [0, 67)"));

  auto head = build(StageKind::Head, "dense", l.context("head", {{"tokens", "token_embd"}}));
  sd.outputs = {2};
  const Batch b2 = sd.batch();
  Rowset logits(1, 67);
  REQUIRE_THROWS_WITH(head->forward(x.tensor(), logits.tensor(), Step{b2, l.be.stream(), nullptr}),
                      Catch::Contains("output row 2 is outside the batch of 2 tokens"));
}

TEST_CASE("stage costs count the work of a step", "[stages]") {
  Layer l;
  add_attention_weights(l, DType::Q8_0);
  auto attn = build(StageKind::Attention, "dense", l.context("attn", kAttnTensors));
  StepData a, b;
  a.pos = {0};
  a.seq = {0};
  b.pos = {100};
  b.seq = {0};
  const StageCost ca = attn->cost(a.batch()), cb = attn->cost(b.batch());
  // Projections: 2 * (64 * 64 * 2 + 64 * 16 * 2) flops per token; scores and values: 4 * keys * 64.
  REQUIRE(ca.flops == Approx(2.0 * (64 * 64 * 2 + 64 * 16 * 2) + 4.0 * 1 * 64));
  REQUIRE(cb.flops - ca.flops == Approx(4.0 * 100 * 64));
  REQUIRE(ca.bytes >= 2 * (64 * 64 + 64 * 16) * 34.0 / 32);  // at least the weights once
  REQUIRE(cb.bytes > ca.bytes);
}

TEST_CASE("registry entries describe the cpu stages and backend", "[stages][registry]") {
  const RecordingRegistry& r = cpu_entries();
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

  Layer l;
  l.hp.sliding_window = 4096;
  const auto why = flash.supports(l.context("attn", {}));
  REQUIRE(why.size() == 1);
  REQUIRE(why[0].find("sliding window of 4096") != std::string::npos);
}
