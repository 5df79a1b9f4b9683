// The vulkan stages of the llama family, built through their registry entries on a small
// in-memory llama layer with GQA, against the float64 references of stage_fixtures.h; inputs and
// outputs live on the device and come back through copy_to_host. Tolerances as stage_fixtures.h
// states them; flash == dense: 1e-5.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include <semline/codec.h>

#include "vulkan/stage_fixtures.h"

using namespace semline;
using namespace semline::vktest;


TEST_CASE("attention: prefill, decodes, mixed sequences, shared prefixes, F16 cache, flash == dense (needs a Vulkan "
          "device)",
          "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  // One script of steps over a paged cache of 4-position blocks whose block tables are scattered;
  // sequence 2 starts at position 8 on the first two blocks of sequence 0 (a shared prefix).
  struct Script {
    std::vector<int32_t> pos;
    std::vector<int32_t> seq;
  };
  const std::vector<Script> script = {
      {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},  // prefill (tiled products)
      {{11}, {0}},                                                              // decode
      {{12, 13, 14, 15, 0, 1, 2}, {0, 0, 0, 0, 1, 1, 1}},  // a chunk not starting at 0, and a new sequence
      {{3, 16}, {1, 0}},                                   // two decodes, sequences in either order
      {{17}, {0}},
      {{8, 9}, {2, 2}},  // positions 0..7 come from sequence 0's blocks
  };
  const std::vector<std::vector<int32_t>> tables = {{5, 2, 7, 0, 9}, {1, 3, 11, 4}, {5, 2, 13}};

  struct Case {
    bool subgroups;
    RopeType rope;
    Heads heads;
    DType weights, cache;
  };
  std::vector<Case> cases;
  for (bool sg : reduction_modes()) {  // each rope pairing with each cache type, on each reduction path
    cases.push_back({sg, RopeType::Normal, {8, 2, 8, 8}, DType::F32, sg ? DType::F32 : DType::F16});
    cases.push_back({sg, RopeType::NeoX, {8, 2, 8, 4}, DType::F32, sg ? DType::F16 : DType::F32});
  }
  for (DType wdt : kAllWeights) cases.push_back({true, RopeType::Normal, {8, 2, 8, 8}, wdt, DType::F32});
  cases.push_back({true, RopeType::NeoX, {2, 1, 128, 128}, DType::F16, DType::F32});  // wide heads, one kv head
  cases.push_back({false, RopeType::Normal, {2, 2, 256, 96}, DType::F32, DType::F16});  // two dim chunks each

  for (const Case& c : cases) {
    INFO((c.subgroups ? "subgroups" : "shared memory")
         << ", rope " << (c.rope == RopeType::NeoX ? "neox" : "normal") << " dim " << c.heads.rope_dim << ", "
         << c.heads.n_head << " heads over " << c.heads.n_kv << " of " << c.heads.head_dim << ", weights "
         << dtype_name(c.weights) << ", cache " << dtype_name(c.cache));
    Layer l(c.subgroups, c.rope, c.heads);
    add_attention_weights(l, c.weights);
    auto dense = build(StageKind::Attention, "dense", l.context("attn", kAttnTensors));
    auto flash = build(StageKind::Attention, "flash", l.context("attn", kAttnTensors), {{"block", int64_t{3}}});
    auto flash64 = build(StageKind::Attention, "flash", l.context("attn", kAttnTensors));
    Cache cd(*l.be, l.hp, c.cache, 4, 16), cf(*l.be, l.hp, c.cache, 4, 16), cf64(*l.be, l.hp, c.cache, 4, 16);
    RefAttention ref{l.hp, separate(l.model.values("q"), l.model.values("k"), l.model.values("v")),
                     l.model.values("o"), nullptr, c.cache == DType::F16, {}};
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
      Rows x(*l.be, m, l.hp.n_embd);
      if (s == 5)
        for (int32_t p = 0; p < 8; ++p) ref.kv[2][p] = ref.kv.at(0).at(p);
      std::vector<Vec> xr;
      for (int64_t t = 0; t < m; ++t) xr.push_back(x.row(t));
      const std::vector<Vec> want = ref.step(xr, sd.pos, sd.seq);
      Vec wv;
      for (const Vec& r : want) wv.insert(wv.end(), r.begin(), r.end());

      Rows od(*l.be, m, l.hp.n_embd), of(*l.be, m, l.hp.n_embd), of64(*l.be, m, l.hp.n_embd);
      dense->forward(x.dev.t, od.dev.t, Step{b, l.be->stream(), &cd.layer});
      flash->forward(x.dev.t, of.dev.t, Step{b, l.be->stream(), &cf.layer});
      flash64->forward(x.dev.t, of64.dev.t, Step{b, l.be->stream(), &cf64.layer});
      const Vec gd = added(*l.be, od), gf = added(*l.be, of), gf64 = added(*l.be, of64);
      CHECK(rel_err(gd, wv) <= tol);
      CHECK(rel_err(gf, wv) <= tol);
      CHECK(rel_err(gf, gd) <= 1e-5);
      CHECK(rel_err(gf64, gd) <= 1e-5);
    }
  }
}

TEST_CASE("attention/dense splits a step whose score rows outgrow its scratch budget (needs a Vulkan device)",
          "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  // 8 heads attending over up to 340 positions: score rows of 512 keys are 16 KiB per token, so a
  // 1 MiB budget holds 64 tokens and a step of 100 takes two dispatches of the dense kernel.
  // Positions before this step were never written: their keys and values are the cache's zeros,
  // the same for both variants.
  Layer l;
  add_attention_weights(l, DType::F32);
  auto dense = build(StageKind::Attention, "dense", l.context("attn", kAttnTensors, 128), {{"scores_mib", int64_t{1}}});
  auto flash = build(StageKind::Attention, "flash", l.context("attn", kAttnTensors, 128));
  Cache cd(*l.be, l.hp, DType::F32, 16, 24), cf(*l.be, l.hp, DType::F32, 16, 24);
  StepData sd;
  for (int32_t i = 0; i < 100; ++i) sd.pos.push_back(240 + i), sd.seq.push_back(0);
  sd.tables.emplace_back();
  for (int32_t i = 0; i < 24; ++i) sd.tables[0].push_back(23 - i);
  const Batch b = sd.batch();
  Rows x(*l.be, 100, 64), od(*l.be, 100, 64), of(*l.be, 100, 64);
  const uint64_t before = l.be->vstream().dispatches();
  dense->forward(x.dev.t, od.dev.t, Step{b, l.be->stream(), &cd.layer});
  CHECK(l.be->vstream().dispatches() - before == 7);  // q, k, v; rope and store; 2 x attention; o
  flash->forward(x.dev.t, of.dev.t, Step{b, l.be->stream(), &cf.layer});
  CHECK(rel_err(added(*l.be, od), added(*l.be, of)) <= 1e-5);
}

TEST_CASE("decode steps replay one recorded command buffer and still see each step's data (needs a Vulkan device)",
          "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  Layer l;
  add_attention_weights(l, DType::Q8_0);
  l.model.add("norm", DType::F32, 64, 1, 1.0f);
  auto norm = build(StageKind::Norm, "rms", l.context("attn_norm", {{"weight", "norm"}}));
  auto flash = build(StageKind::Attention, "flash", l.context("attn", kAttnTensors));
  Cache c(*l.be, l.hp, DType::F32, 4, 8);
  RefAttention ref{l.hp, separate(l.model.values("q"), l.model.values("k"), l.model.values("v")), l.model.values("o"),
                   nullptr, false, {}};
  Rows h(*l.be, 1, 64), x(*l.be, 1, 64);
  const uint64_t replays = l.be->vstream().replays();
  size_t sets_after_first = 0;
  for (int32_t pos = 0; pos < 12; ++pos) {
    INFO("position " << pos);
    // A fresh h each step, uploaded into the same buffer: only data changes between steps.
    const std::vector<float> hv = random_floats(64);
    l.be->copy_to_device(hv.data(), h.dev.t, 256, l.be->stream());
    StepData sd;
    sd.pos = {pos};
    sd.seq = {0};
    sd.tables = {{3, 0, 6}};
    Batch b = sd.batch();
    b.step = static_cast<uint64_t>(pos) + 1;
    norm->forward(h.dev.t, x.dev.t, Step{b, l.be->stream(), nullptr});
    flash->forward(x.dev.t, h.dev.t, Step{b, l.be->stream(), &c.layer});
    const std::vector<float> xv = read_back(*l.be, x.dev.t), got = read_back(*l.be, h.dev.t);
    const Vec want = ref.step({Vec(xv.begin(), xv.end())}, {pos}, {0})[0];
    Vec added(64);
    for (int i = 0; i < 64; ++i) added[i] = static_cast<double>(got[i]) - hv[i];
    CHECK(rel_err(added, want) <= 1e-5);
    if (pos == 0) sets_after_first = l.be->kernels().cached_sets();
  }
  CHECK(l.be->vstream().replays() - replays >= 10);
  CHECK(l.be->kernels().cached_sets() == sets_after_first);  // nothing allocated per token
}

TEST_CASE("attention writes this step's keys (rotated) and values into the cache slots of their positions (needs "
          "a Vulkan device)",
          "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  for (DType cdt : {DType::F32, DType::F16}) {
    INFO("cache " << dtype_name(cdt));
    Layer l;
    add_attention_weights(l, DType::F32);
    auto flash = build(StageKind::Attention, "flash", l.context("attn", kAttnTensors));
    Cache c(*l.be, l.hp, cdt, 4, 8);
    StepData sd;
    sd.pos = {3, 4, 5, 6, 7};  // a chunk that starts inside a block, then crosses into the next
    sd.seq = {0, 0, 0, 0, 0};
    sd.tables = {{6, 3}};
    const Batch b = sd.batch();
    Rows x(*l.be, 5, 64), out(*l.be, 5, 64);
    flash->forward(x.dev.t, out.dev.t, Step{b, l.be->stream(), &c.layer});
    const std::vector<float> k = read_back(*l.be, c.layer.k), v = read_back(*l.be, c.layer.v);
    // The reference's cache after the same step: keys rotated at their positions, both rounded
    // to F16 for an F16 cache.
    RefAttention ref{l.hp, separate(l.model.values("q"), l.model.values("k"), l.model.values("v")),
                     l.model.values("o"), nullptr, cdt == DType::F16, {}};
    const int64_t slot_values = l.hp.n_head_kv * l.hp.head_dim;  // one position's keys (or values)
    for (int32_t p = 0; p < 3; ++p) ref.kv[0][p] = {Vec(slot_values, 0.0), Vec(slot_values, 0.0)};  // the empty slots
    std::vector<Vec> xr;
    for (int64_t t = 0; t < 5; ++t) xr.push_back(x.row(t));
    ref.step(xr, sd.pos, {0, 0, 0, 0, 0});
    const double tol = cdt == DType::F16 ? 1e-3 : 1e-5;         // one F16 rounding step may fall either way
    for (int32_t p : sd.pos) {
      INFO("position " << p);
      const auto& [want_k, want_v] = ref.kv.at(0).at(p);
      const int64_t at = ((p < 4 ? 6 : 3) * 4 + p % 4) * slot_values;
      const Vec got_k(k.begin() + at, k.begin() + at + slot_values), got_v(v.begin() + at, v.begin() + at + slot_values);
      CHECK(rel_err(got_k, want_k) <= tol);
      CHECK(rel_err(got_v, want_v) <= tol);
      CHECK(rel_err(got_k, matvec(l.model.values("k"), x.row(p - sd.pos[0]))) > 1e-2);  // really rotated
    }
    // Slots the step did not write, and blocks the table does not name, stay untouched.
    for (int64_t blk : {0, 6})
      for (int64_t slot = 0; slot < (blk == 6 ? 3 : 4); ++slot)
        for (int64_t i = 0; i < slot_values; ++i) {
          INFO("block " << blk << " slot " << slot);
          REQUIRE(k[(blk * 4 + slot) * slot_values + i] == 0.0f);
          REQUIRE(v[(blk * 4 + slot) * slot_values + i] == 0.0f);
        }
  }
}

TEST_CASE("attention refuses positions its block tables do not cover (needs a Vulkan device)", "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  Layer l;
  add_attention_weights(l, DType::F32);
  auto flash = build(StageKind::Attention, "flash", l.context("attn", kAttnTensors));
  Cache c(*l.be, l.hp, DType::F32, 4, 8);
  StepData sd;
  sd.pos = {9};
  sd.seq = {0};
  sd.tables = {{1, 2}};
  Batch b = sd.batch();
  Rows x(*l.be, 1, 64), out(*l.be, 1, 64);
  CHECK_THROWS_WITH(flash->forward(x.dev.t, out.dev.t, Step{b, l.be->stream(), &c.layer}),
                    Catch::Contains("needs entry 2 of the block table of sequence 0, which has 2 entries"));
  sd.tables = {{1, 2, 8}};
  b = sd.batch();
  CHECK_THROWS_WITH(flash->forward(x.dev.t, out.dev.t, Step{b, l.be->stream(), &c.layer}),
                    Catch::Contains("is cache block 8, but the cache has 8 blocks"));
  CHECK_THROWS_WITH(flash->forward(x.dev.t, out.dev.t, Step{b, l.be->stream(), nullptr}),
                    Catch::Contains("no KV cache"));
}

TEST_CASE("ffn: out += down(silu(gate x) * up x) for every weight dtype (needs a Vulkan device)", "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  for (DType dt : kAllWeights)
    for (int64_t m : {1, 5, 16}) {
      INFO(dtype_name(dt) << ", " << m << " rows");
      Layer l;
      const Weight& g = l.model.add("gate", dt, 64, 96, 0.3f);
      const Weight& u = l.model.add("up", dt, 64, 96, 0.3f);
      const Weight& d = l.model.add("down", dt, 96, 64, 0.3f);
      auto ffn = build(StageKind::Ffn, "dense", l.context("ffn", {{"gate", "gate"}, {"up", "up"}, {"down", "down"}}));
      StepData sd;
      sd.pos.assign(static_cast<size_t>(m), 0);
      sd.seq.assign(static_cast<size_t>(m), 0);
      const Batch b = sd.batch();
      Rows x(*l.be, m, 64), out(*l.be, m, 64);
      ffn->forward(x.dev.t, out.dev.t, Step{b, l.be->stream(), nullptr});
      Vec want;
      for (int64_t t = 0; t < m; ++t) {
        const Vec gx = matvec(g, x.row(t)), ux = matvec(u, x.row(t));
        Vec h(gx.size());
        for (size_t i = 0; i < h.size(); ++i) h[i] = gx[i] / (1 + std::exp(-gx[i])) * ux[i];
        const Vec y = matvec(d, h);
        want.insert(want.end(), y.begin(), y.end());
      }
      CHECK(rel_err(added(*l.be, out), want) <= 1e-5);
    }
}

TEST_CASE("norm: rms with a learned scale, both reduction paths (needs a Vulkan device)", "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  for (bool sg : reduction_modes())
    for (DType dt : {DType::F32, DType::F16})
      for (int64_t width : {64, 1000}) {
        INFO((sg ? "subgroups" : "shared memory") << ", " << dtype_name(dt) << ", width " << width);
        Layer l(sg);
        l.hp.n_embd = width;
        const Weight& w = l.model.add("norm", dt, width, 1, 1.0f);
        auto norm = build(StageKind::Norm, "rms", l.context("attn_norm", {{"weight", "norm"}}));
        StepData sd;
        sd.pos = {0, 1, 2};
        sd.seq = {0, 0, 0};
        const Batch b = sd.batch();
        Rows x(*l.be, 3, width, 3.0f), out(*l.be, 3, width);
        norm->forward(x.dev.t, out.dev.t, Step{b, l.be->stream(), nullptr});
        const std::vector<float> got = read_back(*l.be, out.dev.t);
        Vec want;
        for (int64_t t = 0; t < 3; ++t) {
          const Vec y = rmsnorm(x.row(t), w, l.hp.norm_eps);
          want.insert(want.end(), y.begin(), y.end());
        }
        CHECK(rel_err(Vec(got.begin(), got.end()), want) <= 1e-5);
      }
}

TEST_CASE("embedding: rows of the token table, dequantised exactly (needs a Vulkan device)", "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
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
    Rows unused(*l.be, 5, 64), out(*l.be, 5, 64);
    emb->forward(unused.dev.t, out.dev.t, Step{b, l.be->stream(), nullptr});
    const std::vector<float> got = read_back(*l.be, out.dev.t);
    for (int64_t t = 0; t < 5; ++t)
      for (int64_t i = 0; i < 64; ++i)
        REQUIRE(got[t * 64 + i] == static_cast<float>(table.value[sd.tokens[t] * 64 + i]));
    sd.tokens[2] = 67;
    const Batch bad = sd.batch();
    CHECK_THROWS_WITH(emb->forward(unused.dev.t, out.dev.t, Step{bad, l.be->stream(), nullptr}),
                      Catch::Contains("token id 67 at batch row 2 is outside the vocabulary [0, 67)"));
  }
}

TEST_CASE("head: logits of the wanted rows, in any order, separate or tied weights (needs a Vulkan device)",
          "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  for (bool tied : {false, true})
    for (DType dt : {DType::F32, DType::Q8_0}) {
      INFO((tied ? "tied" : "output matrix") << ", " << dtype_name(dt));
      Layer l;
      const Weight& w = l.model.add(tied ? "token_embd" : "output", dt, 64, 67, 0.5f);
      auto head = build(StageKind::Head, "dense",
                        l.context("output", {{tied ? "tokens" : "output", tied ? "token_embd" : "output"}}));
      for (const std::vector<int32_t>& rows :
           {std::vector<int32_t>{4}, std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, std::vector<int32_t>{9, 2, 5}}) {
        StepData sd;
        sd.pos = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
        sd.seq.assign(10, 0);
        sd.outputs = rows;
        const Batch b = sd.batch();
        Rows x(*l.be, 10, 64);
        DeviceRows out(*l.be, std::vector<float>(rows.size() * 67, 0.0f), 67);
        head->forward(x.dev.t, out.t, Step{b, l.be->stream(), nullptr});
        const std::vector<float> got = read_back(*l.be, out.t);
        Vec want;
        for (int32_t r : rows) {
          const Vec y = matvec(w, x.row(r));
          want.insert(want.end(), y.begin(), y.end());
        }
        CHECK(rel_err(Vec(got.begin(), got.end()), want) <= 1e-5);
      }
    }
}

TEST_CASE("stages refuse another backend's tensors and the cpu backend (needs a Vulkan device)", "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  Layer l;
  l.model.add("norm", DType::F32, 64, 1, 1.0f);
  auto norm = build(StageKind::Norm, "rms", l.context("attn_norm", {{"weight", "norm"}}));
  StepData sd;
  sd.pos = {0};
  sd.seq = {0};
  const Batch b = sd.batch();
  std::vector<float> host(64);
  const Tensor on_host = make_tensor(DType::F32, {64, 1}, host.data());
  Rows out(*l.be, 1, 64);
  CHECK_THROWS_WITH(norm->forward(on_host, out.dev.t, Step{b, l.be->stream(), nullptr}),
                    Catch::Contains("input F32 [64, 1] is not in this vulkan backend's memory"));
  Rows in(*l.be, 1, 64);
  auto other = make_backend();
  CHECK_THROWS_WITH(norm->forward(in.dev.t, out.dev.t, Step{b, other->stream(), nullptr}),
                    Catch::Contains("station 'attn_norm' (layer 0): the step's stream is another backend's"));
  StageContext ctx = l.context("attn_norm", {{"weight", "norm"}});
  ctx.backend = nullptr;
  CHECK_THROWS_WITH(vulkan_entries().stage(StageKind::Norm, "rms").make_stage(ctx),
                    Catch::Contains("the vulkan stages need the vulkan backend"));
}

TEST_CASE("the vulkan stages say in supports() what they cannot serve, without a device", "[stages]") {
  HParams hp;
  hp.arch = "llama";
  hp.n_embd = 64;
  hp.n_ff = 96;
  hp.n_head = 8;
  hp.n_head_kv = 2;
  hp.head_dim = 8;
  hp.rope_dim = 8;
  FakeModel model;
  model.add("router", DType::F32, 64, 8, 0.3f);
  for (const char* name : {"g", "u", "d"}) model.add(name, DType::F32, 64, 96, 0.3f);
  model.add("norm", DType::F32, 64, 1, 1.0f);
  model.add("norm_b", DType::F32, 64, 1, 1.0f);
  StageContext ctx;
  ctx.model = &model;
  ctx.hp = &hp;
  ctx.station = "ffn";
  ctx.tensors = {{"router", "router"}};
  const StageEntry& dense = vulkan_entries().stage(StageKind::Ffn, "dense");
  const StageEntry& moe = vulkan_entries().stage(StageKind::Ffn, "moe");
  hp.n_expert = 8;
  hp.n_expert_used = 2;
  auto why = dense.supports(ctx);
  REQUIRE(why.size() == 1);
  CHECK_THAT(why[0], Catch::Contains("8 experts per layer") && Catch::Contains("use ffn/moe"));
  why = moe.supports(ctx);  // the router alone
  REQUIRE(why.size() == 3);
  CHECK_THAT(why[2], Catch::Contains("no 'down_exps' weight"));
  hp.n_expert = hp.n_expert_used = 0;
  why = moe.supports(ctx);
  REQUIRE(why.size() == 1);
  CHECK_THAT(why[0], Catch::Contains("the model has no experts"));

  ctx.tensors = {{"gate", "g"}, {"up", "u"}, {"down", "d"}};
  CHECK(dense.supports(ctx).empty());
  hp.ffn_act = Activation::Gelu;
  why = dense.supports(ctx);
  REQUIRE(why.size() == 1);
  CHECK_THAT(why[0], Catch::Contains("GeGLU"));
  hp.ffn_act = Activation::Silu;
  ctx.tensors = {{"up", "u"}, {"down", "d"}};
  why = dense.supports(ctx);
  REQUIRE(why.size() == 1);
  CHECK_THAT(why[0], Catch::Contains("no gate and the model's activation is silu"));

  ctx.station = "attn_norm";
  ctx.tensors = {{"weight", "norm"}, {"bias", "norm_b"}};
  why = vulkan_entries().stage(StageKind::Norm, "rms").supports(ctx);
  REQUIRE(why.size() == 1);
  CHECK_THAT(why[0], Catch::Contains("it is a LayerNorm") && Catch::Contains("use norm/layer"));
  CHECK(vulkan_entries().stage(StageKind::Norm, "layer").supports(ctx).empty());

  hp.sliding_window = 4096;
  ctx.station = "attention";
  ctx.tensors = {};
  for (const char* variant : {"dense", "flash"}) {
    INFO(variant);
    why = vulkan_entries().stage(StageKind::Attention, variant).supports(ctx);
    REQUIRE(why.size() == 1);
    CHECK_THAT(why[0], Catch::Contains("sliding window of 4096") && Catch::Contains("cpu backend only"));
  }
  for (const StageEntry& e : vulkan_entries().stages)
    CHECK((e.variant != "sliding_window" && e.variant != "block_sparse"));
}
