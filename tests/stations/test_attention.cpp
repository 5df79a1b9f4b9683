// Attention on every backend: the causal variants (dense, flash with a small and the default
// block) over prefill, decodes, chunks, mixed sequences and shared prefixes on a paged cache;
// GPT-2's fused qkv map with biases and biased separate maps; the cache slots a step writes; the
// refusals; the cost. Tolerances as harness.h states them; flash against dense within the
// weights' tolerance (1e-5, or 1e-2 where a block-quantised W_o rounds its input: the variants'
// 1e-7 differences can move a value across a rounding step).
#include <catch2/catch.hpp>

#include <functional>

#include <semline/codec.h>

#include "stations/harness.h"

using namespace semline;
using namespace semline::stationtest;
using testing::CacheLayout;
using testing::causal_mask;
using testing::fused;
using testing::matvec;
using testing::Project;
using testing::RefAttention;
using testing::separate;

namespace {

struct Script {
  std::vector<int32_t> pos, seq;
};

// The reference rounds the cache's keys and values as the stations store them; what is left is
// float arithmetic on either side of a rounding step: one F16 ulp, or one 8-bit step of a Q8_0
// block (1/127 of its largest value) where the stage's float value and the reference's double
// round apart (8e-3 seen over many seeds; two such steps in one output could double it).
double kv_tol(DType cache) { return cache == DType::F16 ? 2e-3 : cache == DType::Q8_0 ? 2e-2 : 0.0; }

// q8_query: the backend's cores meet Q8_0 keys with an 8-bit query (the target's kQ8Query).
RefAttention llama_reference(const Layer& l, DType cache, bool q8_query = false) {
  return RefAttention{l.hp, separate(l.model.values("q"), l.model.values("k"), l.model.values("v")),
                      l.model.values("o"), nullptr, cache, {}, causal_mask(), q8_query};
}

// Runs a script of steps through the variants side by side, each on a cache of its own (4-position
// blocks, `blocks` of them, in `cache` dtype and layout), every one
// against the reference within tol and against the first within same_tol. before(s) runs ahead of
// step s.
void run_script(Layer& l, const std::vector<Script>& script, const std::vector<std::vector<int32_t>>& tables,
                const std::vector<Stage*>& variants, DType cache, int64_t blocks, RefAttention& ref, double tol,
                double same_tol, const std::function<void(size_t)>& before = {},
                CacheLayout layout = CacheLayout::SlotMajor) {
  std::vector<std::unique_ptr<Cache>> caches;
  for (size_t v = 0; v < variants.size(); ++v)
    caches.push_back(std::make_unique<Cache>(l.be, l.hp, cache, 4, blocks, layout));
  for (size_t s = 0; s < script.size(); ++s) {
    INFO("step " << s);
    if (before) before(s);
    StepData sd;
    sd.pos = script[s].pos;
    sd.seq = script[s].seq;
    sd.tables = tables;
    Batch b = sd.batch();
    b.step = s + 1;
    Rows x(l.be, b.n_tokens, l.hp.n_embd);
    const std::vector<float> start = random_floats(b.n_tokens * l.hp.n_embd);
    const Vec want = concat(ref.step(x.all_rows(), sd.pos, sd.seq));
    Vec first;
    for (size_t v = 0; v < variants.size(); ++v) {
      INFO("variant " << v);
      Rows out(l.be, start, l.hp.n_embd);
      variants[v]->forward(x.t, out.t, Step{b, l.be.stream(), &caches[v]->layer});
      const Vec got = out.added();
      CHECK(rel_err(got, want) <= tol);
      if (v == 0) first = got;
      else CHECK(rel_err(got, first) <= same_tol);
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("attention: prefill, decodes, mixed sequences, shared prefixes, F16 cache, flash == dense",
                   "[stations][attention]", SEMLINE_STATION_TARGETS) {
  // One script of steps over a paged cache of 4-position blocks whose block tables are scattered;
  // sequence 2 starts at position 8 on the first two blocks of sequence 0 (a shared prefix).
  const std::vector<Script> script = {
      {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, std::vector<int32_t>(11, 0)},  // prefill (tiled products)
      {{11}, {0}},                                                         // decode
      {{12, 13, 14, 15, 0, 1, 2}, {0, 0, 0, 0, 1, 1, 1}},  // a chunk not starting at 0, and a new sequence
      {{3, 16}, {1, 0}},                                   // two decodes, sequences in either order
      {{17}, {0}},
      {{8, 9}, {2, 2}},  // positions 0..7 come from sequence 0's blocks
  };
  // Scattered tables, and tables with runs of consecutive blocks (which a core may read as one
  // stretch where the layout lets it), each on a cache of every layout.
  const std::vector<std::vector<int32_t>> scattered = {{5, 2, 7, 0, 9}, {1, 3, 11, 4}, {5, 2, 13}},
                                          in_runs = {{2, 3, 4, 9, 10}, {5, 6, 11, 12}, {2, 3, 13}};
  struct Case {
    RopeType rope;
    Heads heads;
    DType weights, cache;
  };
  std::vector<Case> cases;
  for (DType wdt : kAllWeights) cases.push_back({RopeType::Normal, {8, 2, 8, 8}, wdt, DType::F32});
  cases.push_back({RopeType::Normal, {8, 2, 8, 8}, DType::F32, DType::F16});
  cases.push_back({RopeType::NeoX, {8, 2, 8, 4}, DType::F32, DType::F16});  // partial rotation
  cases.push_back({RopeType::NeoX, {8, 2, 8, 8}, DType::Q8_0, DType::F32});
  cases.push_back({RopeType::Normal, {8, 2, 8, 4}, DType::Q4_0, DType::F16});
  cases.push_back({RopeType::NeoX, {2, 1, 128, 128}, DType::F16, DType::F32});    // wide heads, one kv head
  cases.push_back({RopeType::Normal, {2, 2, 256, 96}, DType::F32, DType::F16});  // long heads
  if (TestType::kv_cache(DType::Q8_0)) {  // heads of whole 32-value blocks (vulkan: whole words)
    const int64_t hd = TestType::kQ8KvHead;
    cases.push_back({RopeType::NeoX, {4, 2, hd, hd}, DType::F32, DType::Q8_0});
    cases.push_back({RopeType::Normal, {2, 1, 128, 128}, DType::Q8_0, DType::Q8_0});
    cases.push_back({RopeType::NeoX, {2, 2, 256, 96}, DType::F32, DType::Q8_0});
  }

  FOR_EACH_SETUP(setup)
  for (const Case& c : cases)
  for (const bool runs : {false, true})
  for (const CacheLayout layout : {CacheLayout::SlotMajor, CacheLayout::HeadMajor, CacheLayout::HeadsApart}) {
    INFO(setup.name << ", rope " << (c.rope == RopeType::NeoX ? "neox" : "normal") << " dim " << c.heads.rope_dim
                    << ", " << c.heads.n_head << " heads over " << c.heads.n_kv << " of " << c.heads.head_dim
                    << ", weights " << dtype_name(c.weights) << ", cache " << dtype_name(c.cache)
                    << (runs ? ", blocks in runs" : ", scattered blocks") << ", "
                    << (layout == CacheLayout::SlotMajor   ? "slot-major"
                        : layout == CacheLayout::HeadMajor ? "head-major blocks"
                                                           : "heads apart"));
    Layer l(setup, c.rope, c.heads);
    l.add_attention_weights(c.weights);
    auto dense = l.build(StageKind::Attention, "dense", l.context("attn", kAttnTensors));
    auto flash = l.build(StageKind::Attention, "flash", l.context("attn", kAttnTensors), {{"block", int64_t{3}}});
    auto flash64 = l.build(StageKind::Attention, "flash", l.context("attn", kAttnTensors));
    RefAttention ref = llama_reference(l, c.cache, TestType::kQ8Query);
    const double tol = std::max(l.weight_tol(c.weights), kv_tol(c.cache));
    run_script(
        l, script, runs ? in_runs : scattered, {dense.get(), flash.get(), flash64.get()}, c.cache, 16, ref, tol,
        l.weight_tol(c.weights),
        [&](size_t s) {
          if (s == 5)
            for (int32_t p = 0; p < 8; ++p) ref.kv[2][p] = ref.kv.at(0).at(p);
        },
        layout);
  }
}

TEMPLATE_TEST_CASE("attention: Gemma 2's score scale and soft cap, dense, flash and a window on the layer",
                   "[stations][attention][gemma2]", SEMLINE_STATION_TARGETS) {
  const std::vector<Script> script = {
      {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, std::vector<int32_t>(11, 0)},
      {{11}, {0}},
      {{12, 13, 0, 1, 2}, {0, 0, 1, 1, 1}},
      {{3, 14}, {1, 0}},
  };
  const std::vector<std::vector<int32_t>> tables = {{5, 2, 7, 0}, {1, 3}};
  FOR_EACH_SETUP(setup)
  for (DType cache : {DType::F32, DType::F16}) {
    INFO(setup.name << ", cache " << dtype_name(cache));
    Layer l(setup, RopeType::NeoX, {8, 2, 8, 8});
    l.add_attention_weights(DType::F32);
    // A scale other than 1 / sqrt(head_dim) (query_pre_attn_scalar) and a cap the scores reach.
    l.hp.extra["attention_scale"] = 0.7;
    l.hp.extra["attn_logit_softcap"] = 0.8;
    auto dense = l.build(StageKind::Attention, "dense", l.context("attn", kAttnTensors));
    auto flash = l.build(StageKind::Attention, "flash", l.context("attn", kAttnTensors), {{"block", int64_t{3}}});
    RefAttention ref = llama_reference(l, cache);
    const double tol = cache == DType::F16 ? 2e-3 : 1e-5;
    run_script(l, script, tables, {dense.get(), flash.get()}, cache, 16, ref, tol, tol);

    // The same scores over a window of 4: the model's window on the layers of its pattern (the
    // even ones with swa_period 2), every key on the others.
    l.hp.sliding_window = 4;
    l.hp.extra["swa_period"] = 2;
    for (int32_t layer : {0, 1}) {
      INFO("layer " << layer);
      StageContext ctx = l.context("attn", kAttnTensors);
      ctx.layer = layer;
      auto windowed = l.build(StageKind::Attention, "sliding_window", ctx, {{"block", int64_t{3}}});
      CHECK(windowed->kv_window() == (layer == 0 ? 4 : 0));
      RefAttention wref = llama_reference(l, cache);
      if (layer == 0) wref.mask = testing::sliding_mask(4);
      run_script(l, script, tables, {windowed.get()}, cache, 16, wref, tol, tol);
    }
  }
}

TEMPLATE_TEST_CASE("attention: a fused qkv map, biases, no rotary embedding, and biased separate maps with RoPE",
                   "[stations][attention][gpt2]", SEMLINE_STATION_TARGETS) {
  // Prefill, decode, a chunk and a new sequence in one step, over scattered 4-position blocks.
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
  FOR_EACH_SETUP(setup)
  for (const Case& c : cases) {
    INFO(setup.name << ", " << (c.fused ? "fused qkv" : "q, k, v") << ", rope "
                    << (c.rope == RopeType::None ? "none" : "normal") << ", weights " << dtype_name(c.weights)
                    << ", cache " << dtype_name(c.cache));
    Layer l(setup, c.rope, Heads{4, 4, 16, 16});  // GPT-2's shape: as many kv heads as query heads
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
      l.add_attention_weights(c.weights);
      const Weight& bq = l.model.add("q_b", DType::F32, qd, 1, 1.0f);
      const Weight& bk = l.model.add("k_b", DType::F32, kd, 1, 1.0f);
      const Weight& bv = l.model.add("v_b", DType::F32, kd, 1, 1.0f);
      tensors.insert(tensors.end(), {{"q", "q"}, {"k", "k"}, {"v", "v"}, {"q_bias", "q_b"}, {"k_bias", "k_b"},
                                     {"v_bias", "v_b"}});
      project = separate(l.model.values("q"), l.model.values("k"), l.model.values("v"), &bq, &bk, &bv);
    }
    auto dense = l.build(StageKind::Attention, "dense", l.context("attn", tensors));
    auto flash = l.build(StageKind::Attention, "flash", l.context("attn", tensors), {{"block", int64_t{3}}});
    RefAttention ref{l.hp, project, wo, &bo, c.cache, {}, causal_mask(), TestType::kQ8Query};
    const double tol = std::max(l.weight_tol(c.weights), c.cache == DType::F16 ? 2e-3 : 0.0);
    run_script(l, script, tables, {dense.get(), flash.get()}, c.cache, 8, ref, tol, l.weight_tol(c.weights));
  }
}

TEMPLATE_TEST_CASE("attention writes this step's keys (rotated) and values into the cache slots of their positions",
                   "[stations][attention]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (DType cdt : {DType::F32, DType::F16}) {
    INFO(setup.name << ", cache " << dtype_name(cdt));
    Layer l(setup);
    l.add_attention_weights(DType::F32);
    auto flash = l.build(StageKind::Attention, "flash", l.context("attn", kAttnTensors));
    Cache c(l.be, l.hp, cdt, 4, 8);
    StepData sd;
    sd.pos = {3, 4, 5, 6, 7};  // a chunk that starts inside a block, then crosses into the next
    sd.seq = {0, 0, 0, 0, 0};
    sd.tables = {{6, 3}};
    const Batch b = sd.batch();
    Rows x(l.be, 5, 64), out(l.be, 5, 64);
    flash->forward(x.t, out.t, Step{b, l.be.stream(), &c.layer});
    const std::vector<float> k = read_back(l.be, c.layer.k), v = read_back(l.be, c.layer.v);
    // The reference's cache after the same step: keys rotated at their positions, both rounded
    // to F16 for an F16 cache.
    RefAttention ref = llama_reference(l, cdt);
    const int64_t slot_values = l.hp.n_head_kv * l.hp.head_dim;  // one position's keys (or values)
    for (int32_t p = 0; p < 3; ++p) ref.kv[0][p] = {Vec(slot_values, 0.0), Vec(slot_values, 0.0)};  // the empty slots
    ref.step(x.all_rows(), sd.pos, sd.seq);
    const double tol = cdt == DType::F16 ? 1e-3 : 1e-5;  // one F16 rounding step may fall either way
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

TEMPLATE_TEST_CASE("attention refuses bad steps with one clear error and stays usable", "[stations][attention][errors]",
                   SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup) {
    INFO(setup.name);
    Layer l(setup);
    l.add_attention_weights(DType::F32);
    auto attn = l.build(StageKind::Attention, "flash", l.context("attn", kAttnTensors, 4));
    Cache c(l.be, l.hp, DType::F32, 4, 4);
    Rows x(l.be, 6, 64), out(l.be, 6, 64);
    auto run = [&](std::vector<int32_t> pos, std::vector<int32_t> seq, std::vector<std::vector<int32_t>> tables,
                   const KvLayer* kv) {
      StepData sd;
      sd.pos = std::move(pos);
      sd.seq = std::move(seq);
      sd.tables = std::move(tables);
      const Batch b = sd.batch();
      attn->forward(x.t, out.t, Step{b, l.be.stream(), kv});
    };
    CHECK_THROWS_WITH(run({0}, {1}, {{0}}, &c.layer), Catch::Contains("names sequence 1 but the batch has 1"));
    CHECK_THROWS_WITH(run({-1}, {0}, {{0}}, &c.layer), Catch::Contains("negative position -1"));
    CHECK_THROWS_WITH(run({9}, {0}, {{0, 1}}, &c.layer),
                      Catch::Contains("needs entry 2 of the block table of sequence 0, which has 2 entries"));
    CHECK_THROWS_WITH(run({5}, {0}, {{0, 4}}, &c.layer), Catch::Contains("is cache block 4, but the cache has 4 blocks"));
    CHECK_THROWS_WITH(run({0, 1, 2, 3, 4}, {0, 0, 0, 0, 0}, {{0, 1}}, &c.layer),
                      Catch::Contains("batch of 5 tokens exceeds max_batch_tokens 4"));
    CHECK_THROWS_WITH(run({0}, {0}, {{0}}, nullptr), Catch::Contains("no KV cache"));
    Cache wrong(l.be, l.hp, DType::F32, 4, 4);
    wrong.layer.k.ne[1] = 1;
    CHECK_THROWS_WITH(run({0}, {0}, {{0}}, &wrong.layer), Catch::Contains("KV cache k must be F32, F16 or Q8_0"));
    Cache overlapping(l.be, l.hp, DType::F32, 4, 4, CacheLayout::HeadsApart);
    overlapping.layer.v.nb[3] = overlapping.layer.v.nb[2];  // each block would start one row after the last
    CHECK_THROWS_WITH(run({0}, {0}, {{0}}, &overlapping.layer), Catch::Contains("KV cache v F32 [") &&
                                                                   Catch::Contains("has overlapping strides"));
    run({0, 1}, {0, 0}, {{0}}, &c.layer);  // still usable after the errors
    l.be.stream().synchronize();
  }
}

TEMPLATE_TEST_CASE("attention's cost counts the projections once and the scores and values per key",
                   "[stations][attention]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup) {
    INFO(setup.name);
    Layer l(setup);
    l.add_attention_weights(DType::Q8_0);
    auto attn = l.build(StageKind::Attention, "dense", l.context("attn", kAttnTensors));
    StepData a, b;
    a.pos = {0};
    a.seq = {0};
    b.pos = {100};
    b.seq = {0};
    const StageCost ca = attn->cost(a.batch()), cb = attn->cost(b.batch());
    // Projections: 2 * (64 * 64 * 2 + 64 * 16 * 2) flops per token; scores and values: 4 * keys * 64.
    CHECK(ca.flops == Approx(2.0 * (64 * 64 * 2 + 64 * 16 * 2) + 4.0 * 1 * 64));
    CHECK(cb.flops - ca.flops == Approx(4.0 * 100 * 64));
    CHECK(ca.bytes >= 2 * (64 * 64 + 64 * 16) * 34.0 / 32);  // at least the weights once
    CHECK(cb.bytes > ca.bytes);
  }
}
