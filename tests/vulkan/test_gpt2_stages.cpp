// What the vulkan stages do for GPT-2 (and any model with these stations), against float64
// references: LayerNorm with and without a shift, the GELU MLP (exact and tanh) with biases, a
// fused qkv map with biases and no rotary embedding (and biases on separate q, k, v), and learned
// position rows added to the token rows. Tolerances as stage_fixtures.h states them.
#include <catch2/catch.hpp>

#include <cmath>

#include "vulkan/stage_fixtures.h"

using namespace semline;
using namespace semline::vktest;

namespace {

double gelu(double v, Activation act) {
  const double z = std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v);
  return act == Activation::Gelu ? 0.5 * v * std::erfc(-v / std::sqrt(2.0)) : 0.5 * v * (1.0 + std::tanh(z));
}

}  // namespace

TEST_CASE("norm: layer with a learned scale and optional shift, a mean far from the spread, both reduction paths "
          "(needs a Vulkan device)",
          "[stages][gpt2]") {
  SEMLINE_REQUIRE_VULKAN();
  for (bool sg : reduction_modes())
    for (DType dt : {DType::F32, DType::F16})
      for (int64_t width : {64, 1000})
        for (bool shift : {true, false}) {
          INFO((sg ? "subgroups" : "shared memory") << ", " << dtype_name(dt) << ", width " << width
                                                    << (shift ? ", with bias" : ", no bias"));
          Layer l(sg);
          l.hp.n_embd = width;
          const Weight& w = l.model.add("norm", dt, width, 1, 1.0f);
          const Weight& bias = l.model.add("norm_b", dt, width, 1, 1.0f);
          std::vector<std::pair<std::string, std::string>> tensors = {{"weight", "norm"}};
          if (shift) tensors.emplace_back("bias", "norm_b");
          auto norm = build(StageKind::Norm, "layer", l.context("attn_norm", tensors));
          StepData sd;
          sd.pos = {0, 1, 2};
          sd.seq = {0, 0, 0};
          const Batch b = sd.batch();
          // A mean 50 times the spread: E[x^2] - mean^2 would lose three digits of the variance.
          std::vector<float> xv = random_floats(3 * width);
          for (float& v : xv) v += 50.0f;
          Rows x(*l.be, xv, width), out(*l.be, 3, width);
          norm->forward(x.dev.t, out.dev.t, Step{b, l.be->stream(), nullptr});
          const std::vector<float> got = read_back(*l.be, out.dev.t);
          Vec want;
          for (int64_t t = 0; t < 3; ++t) {
            const Vec r = x.row(t);
            double mean = 0, var = 0;
            for (double v : r) mean += v / static_cast<double>(width);
            for (double v : r) var += (v - mean) * (v - mean) / static_cast<double>(width);
            for (int64_t i = 0; i < width; ++i)
              want.push_back((r[i] - mean) / std::sqrt(var + l.hp.norm_eps) * w.value[i] + (shift ? bias.value[i] : 0.0));
          }
          CHECK(rel_err(Vec(got.begin(), got.end()), want) <= 1e-5);
        }
}

TEST_CASE("ffn: out += down(gelu(up x + b_up)) + b_down, exact and tanh GELU, every weight dtype (needs a Vulkan "
          "device)",
          "[stages][gpt2]") {
  SEMLINE_REQUIRE_VULKAN();
  for (Activation act : {Activation::Gelu, Activation::GeluTanh})
    for (DType dt : kAllWeights)
      for (int64_t m : {1, 5, 16})  // one row, the multi-row matrix-vector kernel, the tiled one
        for (bool biases : {true, false}) {
          if ((!biases || m != 5) && dt != DType::F32) continue;  // every dtype once, every form with F32
          INFO((act == Activation::Gelu ? "gelu" : "gelu_tanh") << ", " << dtype_name(dt) << ", " << m << " rows"
                                                                 << (biases ? ", biases" : ""));
          Layer l;
          l.hp.ffn_act = act;
          const Weight& u = l.model.add("up", dt, 64, 96, 0.3f);
          const Weight& ub = l.model.add("up_b", DType::F32, 96, 1, 1.0f);
          const Weight& d = l.model.add("down", dt, 96, 64, 0.3f);
          const Weight& db = l.model.add("down_b", DType::BF16, 64, 1, 1.0f);
          std::vector<std::pair<std::string, std::string>> tensors = {{"up", "up"}, {"down", "down"}};
          if (biases) tensors.insert(tensors.end(), {{"up_bias", "up_b"}, {"down_bias", "down_b"}});
          auto ffn = build(StageKind::Ffn, "dense", l.context("ffn", tensors));
          StepData sd;
          sd.pos.assign(static_cast<size_t>(m), 0);
          sd.seq.assign(static_cast<size_t>(m), 0);
          const Batch b = sd.batch();
          Rows x(*l.be, m, 64), out(*l.be, m, 64);
          ffn->forward(x.dev.t, out.dev.t, Step{b, l.be->stream(), nullptr});
          Vec want;
          for (int64_t t = 0; t < m; ++t) {
            Vec h = plus(matvec(u, x.row(t)), biases ? &ub : nullptr);
            for (double& v : h) v = gelu(v, act);
            const Vec y = plus(matvec(d, h), biases ? &db : nullptr);
            want.insert(want.end(), y.begin(), y.end());
          }
          CHECK(rel_err(added(*l.be, out), want) <= 1e-5);
        }
}

TEST_CASE("attention: a fused qkv map, biases, no rotary embedding, and biased separate maps with RoPE, dense and flash "
          "(needs a Vulkan device)",
          "[stages][gpt2]") {
  SEMLINE_REQUIRE_VULKAN();
  // Prefill, decode, a chunk and a new sequence in one step, over scattered 4-position blocks.
  struct Script {
    std::vector<int32_t> pos, seq;
  };
  const std::vector<Script> script = {{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, std::vector<int32_t>(11, 0)},
                                      {{11}, {0}},
                                      {{12, 13, 14, 0, 1}, {0, 0, 0, 1, 1}},
                                      {{2, 15}, {1, 0}}};
  const std::vector<std::vector<int32_t>> tables = {{5, 2, 7, 0}, {1, 3}};
  struct Case {
    bool fused;
    RopeType rope;
    DType weights, cache;
  };
  std::vector<Case> cases;
  for (DType dt : kAllWeights) cases.push_back({true, RopeType::None, dt, DType::F32});
  cases.push_back({true, RopeType::None, DType::F32, DType::F16});
  cases.push_back({false, RopeType::Normal, DType::F32, DType::F32});
  cases.push_back({false, RopeType::None, DType::Q8_0, DType::F32});
  for (const Case& c : cases) {
    INFO((c.fused ? "fused qkv" : "q, k, v") << ", rope " << (c.rope == RopeType::None ? "none" : "normal")
                                             << ", weights " << dtype_name(c.weights) << ", cache "
                                             << dtype_name(c.cache));
    Layer l(true, c.rope, Heads{4, 4, 16, 16});  // GPT-2's shape: as many kv heads as query heads
    const int64_t qd = 64, kd = 64;
    std::vector<std::pair<std::string, std::string>> tensors = {{"o", "o"}, {"o_bias", "o_b"}};
    const Weight& wo = l.model.add("o", c.weights, qd, 64, 0.3f);
    const Weight& bo = l.model.add("o_b", DType::F32, 64, 1, 1.0f);
    Project project;
    if (c.fused) {
      const Weight& w = l.model.add("qkv", c.weights, 64, qd + 2 * kd, 0.3f);
      const Weight& bias = l.model.add("qkv_b", DType::F16, qd + 2 * kd, 1, 1.0f);
      tensors.insert(tensors.end(), {{"qkv", "qkv"}, {"qkv_bias", "qkv_b"}});
      project = fused(w, &bias, qd, kd);
    } else {
      add_attention_weights(l, c.weights);
      const Weight& bq = l.model.add("q_b", DType::F32, qd, 1, 1.0f);
      const Weight& bk = l.model.add("k_b", DType::F32, kd, 1, 1.0f);
      const Weight& bv = l.model.add("v_b", DType::F32, kd, 1, 1.0f);
      tensors.insert(tensors.end(), {{"q", "q"}, {"k", "k"}, {"v", "v"}, {"q_bias", "q_b"}, {"k_bias", "k_b"},
                                     {"v_bias", "v_b"}});
      project = separate(l.model.values("q"), l.model.values("k"), l.model.values("v"), &bq, &bk, &bv);
    }
    auto dense = build(StageKind::Attention, "dense", l.context("attn", tensors));
    auto flash = build(StageKind::Attention, "flash", l.context("attn", tensors), {{"block", int64_t{3}}});
    Cache cd(*l.be, l.hp, c.cache, 4, 8), cf(*l.be, l.hp, c.cache, 4, 8);
    RefAttention ref{l.hp, project, wo, &bo, c.cache == DType::F16, {}};
    const double tol = c.cache == DType::F16 ? 2e-3 : 1e-5;
    for (size_t s = 0; s < script.size(); ++s) {
      INFO("step " << s);
      StepData sd;
      sd.pos = script[s].pos;
      sd.seq = script[s].seq;
      sd.tables = tables;
      Batch b = sd.batch();
      b.step = s + 1;
      const int64_t m = b.n_tokens;
      Rows x(*l.be, m, 64), od(*l.be, m, 64), of(*l.be, m, 64);
      std::vector<Vec> xr;
      for (int64_t t = 0; t < m; ++t) xr.push_back(x.row(t));
      Vec want;
      for (const Vec& r : ref.step(xr, sd.pos, sd.seq)) want.insert(want.end(), r.begin(), r.end());
      dense->forward(x.dev.t, od.dev.t, Step{b, l.be->stream(), &cd.layer});
      flash->forward(x.dev.t, of.dev.t, Step{b, l.be->stream(), &cf.layer});
      const Vec gd = added(*l.be, od), gf = added(*l.be, of);
      CHECK(rel_err(gd, want) <= tol);
      CHECK(rel_err(gf, want) <= tol);
      CHECK(rel_err(gf, gd) <= 1e-5);
    }
  }
}

TEST_CASE("embedding: token rows plus learned position rows by each token's position (needs a Vulkan device)",
          "[stages][gpt2]") {
  SEMLINE_REQUIRE_VULKAN();
  for (DType dt : kAllWeights)
    for (DType pdt : {DType::F32, DType::F16}) {
      INFO("tokens " << dtype_name(dt) << ", positions " << dtype_name(pdt));
      Layer l;
      const Weight& table = l.model.add("token_embd", dt, 64, 67, 1.0f);
      const Weight& positions = l.model.add("position_embd", pdt, 64, 16, 1.0f);
      auto emb = build(StageKind::Embedding, "lookup",
                       l.context("embedding", {{"tokens", "token_embd"}, {"positions", "position_embd"}}));
      StepData sd;
      sd.tokens = {0, 66, 5, 5, 31, 9};
      sd.pos = {3, 15, 0, 7, 7, 1};  // any order, repeats: two sequences' rows in one step
      sd.seq = {0, 0, 1, 1, 0, 1};
      const Batch b = sd.batch();
      Rows unused(*l.be, 6, 64), out(*l.be, 6, 64);
      emb->forward(unused.dev.t, out.dev.t, Step{b, l.be->stream(), nullptr});
      const std::vector<float> got = read_back(*l.be, out.dev.t);
      // Both rows are exact floats; their float sum is what the kernel must give, bit for bit.
      for (int64_t t = 0; t < 6; ++t)
        for (int64_t i = 0; i < 64; ++i)
          REQUIRE(got[t * 64 + i] == static_cast<float>(table.value[sd.tokens[t] * 64 + i]) +
                                         static_cast<float>(positions.value[sd.pos[t] * 64 + i]));
      sd.pos[4] = 16;
      const Batch past = sd.batch();
      CHECK_THROWS_WITH(emb->forward(unused.dev.t, out.dev.t, Step{past, l.be->stream(), nullptr}),
                        Catch::Contains("position 16 at batch row 4 is past the model's 16 learned positions"));
    }
}
