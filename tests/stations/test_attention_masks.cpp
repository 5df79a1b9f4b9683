// attention/sliding_window and attention/block_sparse against the float64 reference with each
// variant's own mask (1e-5; 2e-3 with an F16 cache, see harness.h), against dense where the
// window or the pattern covers the context (1e-5), with the deviation from dense reported where
// it does not; and the blocks a windowed variant reads, its window, its cost. The masks are the
// stations' (written once); the targets are the backends that register these variants' cores.
#include <catch2/catch.hpp>

#include <algorithm>

#include "stations/harness.h"

using namespace semline;
using namespace semline::stationtest;
using testing::block_sparse_mask;
using testing::Mask;
using testing::RefAttention;
using testing::separate;
using testing::sliding_mask;

// The backends that register the masked cores (sliding_window runs on every backend, block_sparse
// on the cpu).
#define SEMLINE_WINDOWED_TARGETS Cpu

namespace {

// Steps over a paged cache of 4-position blocks with scattered tables: a prefill longer than the
// windows, decodes, a chunk of sequence 0 beside the prefill of sequence 1, decodes in either
// order, a last chunk.
struct Script {
  std::vector<int32_t> pos;
  std::vector<int32_t> seq;
};
const std::vector<Script> kScript = {
    {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, std::vector<int32_t>(10, 0)},
    {{10}, {0}},
    {{11, 12, 13, 0, 1, 2}, {0, 0, 0, 1, 1, 1}},
    {{3, 14}, {1, 0}},
    {{15, 16, 17, 18, 19, 20}, std::vector<int32_t>(6, 0)},
};
const std::vector<std::vector<int32_t>> kTables = {{5, 2, 7, 0, 9, 11}, {1, 3}};
constexpr int32_t kContext = 21;  // positions the script reaches

struct Variant {
  std::string name;
  std::map<std::string, ParamValue> params;
  Mask mask;
};

// Runs the script through `variant` and dense side by side; returns, per step, the largest
// relative error against the reference with the variant's mask and against dense.
struct Errors {
  double vs_reference = 0, vs_dense = 0;
};
// q8_query: the backend's cores meet Q8_0 keys with an 8-bit query (the target's kQ8Query).
Errors run_script(const Setup& setup, const Variant& var, DType cache, int64_t model_window = 0, Heads heads = {},
                  bool q8_query = false) {
  Layer l(setup, RopeType::Normal, heads);
  l.add_attention_weights(DType::F32);
  l.hp.sliding_window = model_window;
  auto stage = l.build(StageKind::Attention, var.name, l.context("attn", kAttnTensors), var.params);
  l.hp.sliding_window = 0;  // dense refuses windowed models; it is the comparison here
  auto dense = l.build(StageKind::Attention, "dense", l.context("attn", kAttnTensors));
  Cache cv(l.be, l.hp, cache, 4, 16), cd(l.be, l.hp, cache, 4, 16);
  RefAttention ref{l.hp, separate(l.model.values("q"), l.model.values("k"), l.model.values("v")), l.model.values("o"), nullptr,
                   cache, {}, var.mask, q8_query};
  Errors e;
  for (const Script& step : kScript) {
    StepData sd;
    sd.pos = step.pos;
    sd.seq = step.seq;
    sd.tables = kTables;
    const Batch b = sd.batch();
    const int64_t m = b.n_tokens, d = l.hp.n_embd;
    Rows x(l.be, m, d), ov(l.be, m, d), od(l.be, ov.host, d);
    const Vec wv = concat(ref.step(x.all_rows(), sd.pos, sd.seq));
    stage->forward(x.t, ov.t, Step{b, l.be.stream(), &cv.layer});
    dense->forward(x.t, od.t, Step{b, l.be.stream(), &cd.layer});
    const Vec gv = ov.added(), gd = od.added();
    e.vs_reference = std::max(e.vs_reference, rel_err(gv, wv));
    e.vs_dense = std::max(e.vs_dense, rel_err(gv, gd));
  }
  return e;
}

std::string describe(const Variant& v) {
  std::string s = v.name;
  for (const auto& [k, p] : v.params) s += " " + k + "=" + param_value_string(p);
  return s;
}

Variant sliding(int64_t window, int64_t block) {
  return {"sliding_window", {{"window", window}, {"block", block}}, sliding_mask(static_cast<int32_t>(window))};
}
Variant sparse(int64_t block, int64_t local, int64_t global, int64_t stride) {
  return {"block_sparse",
          {{"block", block}, {"local", local}, {"global", global}, {"stride", stride}},
          block_sparse_mask(static_cast<int32_t>(block), static_cast<int32_t>(local), static_cast<int32_t>(global),
                            static_cast<int32_t>(stride))};
}

}  // namespace

TEMPLATE_TEST_CASE("sliding_window and block_sparse match the float64 reference with their own masks",
                   "[stations][masks]", SEMLINE_WINDOWED_TARGETS) {
  const std::vector<Variant> variants = {
      sliding(1, 64), sliding(3, 2), sliding(7, 5), sliding(12, 4),
      sparse(2, 2, 1, 3),  // local band, the first block, every third block
      sparse(3, 1, 0, 0),  // its own block only
      sparse(4, 1, 2, 0),  // own block and the first two
      sparse(2, 1, 0, 2),  // own block and every other block
  };
  FOR_EACH_SETUP(setup)
  for (DType cache : {DType::F32, DType::F16, DType::Q8_0}) {
    if (!TestType::kv_cache(cache)) continue;
    // A Q8_0 cache stores heads of whole 32-value blocks; its tolerance is one 8-bit step
    // (test_attention.cpp, kv_tol).
    const int64_t hd = TestType::kQ8KvHead;
    const Heads heads = cache == DType::Q8_0 ? Heads{4, 2, hd, hd} : Heads{};
    const double tol = cache == DType::F32 ? 1e-5 : cache == DType::F16 ? 2e-3 : 2e-2;
    for (const Variant& v : variants) {
      INFO(setup.name << ", cache " << dtype_name(cache) << ", " << describe(v));
      const Errors e = run_script(setup, v, cache, 0, heads, TestType::kQ8Query);
      CHECK(e.vs_reference <= tol);
      CHECK(e.vs_dense > 1e-3);  // none of these patterns covers the context
    }
  }
}

TEMPLATE_TEST_CASE("sliding_window matches the float64 reference with its window on every backend", "[stations][masks]",
                   SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (DType cache : {DType::F32, DType::F16})
    for (const Variant& v : {sliding(1, 64), sliding(3, 2), sliding(7, 5), sliding(12, 4)}) {
      INFO(setup.name << ", cache " << dtype_name(cache) << ", " << describe(v));
      const Errors e = run_script(setup, v, cache, 0, {}, TestType::kQ8Query);
      CHECK(e.vs_reference <= (cache == DType::F16 ? 2e-3 : 1e-5));
      CHECK(e.vs_dense > 1e-3);
    }
}

TEMPLATE_TEST_CASE("sliding_window with the model's window is its mask, windows and patterns that cover the context "
                   "are dense",
                   "[stations][masks]", SEMLINE_WINDOWED_TARGETS) {
  FOR_EACH_SETUP(setup) {
    INFO(setup.name);
    Variant model = sliding(0, 3);
    model.mask = sliding_mask(5);
    const Errors own = run_script(setup, model, DType::F32, 5);
    CHECK(own.vs_reference <= 1e-5);

    for (const Variant& v : {sliding(kContext, 64), sliding(1000, 7), sparse(4, 8, 0, 0), sparse(3, 1, 0, 1),
                             sparse(2, 1, 11, 0)}) {
      INFO(describe(v));
      const Errors e = run_script(setup, v, DType::F32);
      CHECK(e.vs_dense <= 1e-5);
      CHECK(e.vs_reference <= 1e-5);
    }
    // Where they do not cover it, how far they are from dense on this script (reported, not a bound).
    for (const Variant& v : {sliding(4, 64), sliding(12, 64), sparse(4, 2, 1, 0), sparse(2, 2, 1, 4)}) {
      const Errors e = run_script(setup, v, DType::F32);
      WARN(describe(v) << " over " << kContext << " positions: max relative deviation from dense " << e.vs_dense);
      CHECK(e.vs_dense > 0);
    }
  }
}

TEMPLATE_TEST_CASE("a windowed variant reads only the blocks its window reaches", "[stations][masks]",
                   SEMLINE_WINDOWED_TARGETS) {
  FOR_EACH_SETUP(setup) {
    INFO(setup.name);
    Layer l(setup);
    l.add_attention_weights(DType::F32);
    auto win = l.build(StageKind::Attention, "sliding_window", l.context("attn", kAttnTensors), {{"window", int64_t{3}}});
    auto dense = l.build(StageKind::Attention, "dense", l.context("attn", kAttnTensors));
    Cache c(l.be, l.hp, DType::F32, 4, 8);
    RefAttention ref{l.hp, separate(l.model.values("q"), l.model.values("k"), l.model.values("v")), l.model.values("o"), nullptr,
                     DType::F32, {}, sliding_mask(3)};
    auto step = [&](Stage& s, std::vector<int32_t> pos, std::vector<int32_t> table) {
      StepData sd;
      sd.pos = std::move(pos);
      sd.seq.assign(sd.pos.size(), 0);
      sd.tables = {std::move(table)};
      const Batch b = sd.batch();
      const int64_t m = b.n_tokens;
      Rows x(l.be, m, 64), out(l.be, m, 64);
      s.forward(x.t, out.t, Step{b, l.be.stream(), &c.layer});
      return rel_err(out.added(), concat(ref.step(x.all_rows(), sd.pos, sd.seq)));
    };
    CHECK(step(*win, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {4, 6, 1, 3}) <= 1e-5);
    // Positions 0..7 are behind the window of every query from 10 on: their blocks are released.
    CHECK(step(*win, {10, 11}, {-1, -1, 1, 3}) <= 1e-5);
    CHECK(step(*win, {12}, {-1, -1, 1, 3}) <= 1e-5);
    REQUIRE_THROWS_WITH(step(*win, {9}, {-1, -1, 1, 3}),
                        Catch::Contains("reads keys from position 7, but block table entry 1 of sequence 0 was released"));
    REQUIRE_THROWS_WITH(step(*dense, {12}, {-1, -1, 1, 3}),
                        Catch::Contains("reads keys from position 0, but block table entry 0 of sequence 0 was released"));

    CHECK(win->kv_window() == 3);
    CHECK(dense->kv_window() == 0);
    CHECK(l.build(StageKind::Attention, "flash", l.context("attn", kAttnTensors))->kv_window() == 0);
    // block_sparse reads a bounded distance back only with its local band alone.
    auto band = l.build(StageKind::Attention, "block_sparse", l.context("attn", kAttnTensors),
                      {{"block", int64_t{3}}, {"local", int64_t{2}}, {"global", int64_t{0}}, {"stride", int64_t{0}}});
    CHECK(band->kv_window() == 6);
    CHECK(l.build(StageKind::Attention, "block_sparse", l.context("attn", kAttnTensors))->kv_window() == 0);
  }
}

TEMPLATE_TEST_CASE("which attention variants serve a model with a sliding window, and their costs", "[stations][masks]",
                   SEMLINE_WINDOWED_TARGETS) {
  FOR_EACH_SETUP(setup) {
    INFO(setup.name);
    Layer l(setup);
    const StageEntry& sliding_e = l.entry(StageKind::Attention, "sliding_window");
    l.add_attention_weights(DType::F32);
    StageContext plain = l.context("attn", kAttnTensors);
    const auto why = sliding_e.supports(plain);
    REQUIRE(why.size() == 1);
    CHECK_THAT(why[0], Catch::Contains("no sliding window"));
    plain.params.values["window"] = int64_t{4};
    CHECK(sliding_e.supports(plain).empty());

    l.hp.sliding_window = 4096;
    StageContext windowed = l.context("attn", kAttnTensors);
    CHECK(sliding_e.supports(windowed).empty());
    CHECK(sliding_e.caps.exact);
    for (const char* v : {"dense", "flash", "block_sparse"}) {
      INFO(v);
      const auto refused = l.entry(StageKind::Attention, v).supports(windowed);
      REQUIRE(refused.size() == 1);
      CHECK_THAT(refused[0], Catch::Contains("sliding window of 4096"));
    }
    CHECK_FALSE(l.entry(StageKind::Attention, "block_sparse").caps.exact);
    CHECK(l.build(StageKind::Attention, "sliding_window", windowed)->kv_window() == 4096);
    l.hp.sliding_window = 0;

    // Scores and values cost 4 * keys * n_head * head_dim flops per query.
    auto flops_at = [&](Stage& s, int32_t pos) {
      StepData sd;
      sd.pos = {pos};
      sd.seq = {0};
      return s.cost(sd.batch()).flops;
    };
    auto dense = l.build(StageKind::Attention, "dense", l.context("attn", kAttnTensors));
    auto win = l.build(StageKind::Attention, "sliding_window", l.context("attn", kAttnTensors), {{"window", int64_t{4}}});
    auto sp = l.build(StageKind::Attention, "block_sparse", l.context("attn", kAttnTensors),
                    {{"block", int64_t{2}}, {"local", int64_t{2}}, {"global", int64_t{1}}, {"stride", int64_t{3}}});
    CHECK(flops_at(*dense, 100) - flops_at(*win, 100) == Approx(4.0 * (101 - 4) * 64));
    CHECK(flops_at(*dense, 2) == Approx(flops_at(*win, 2)));
    // Position 13 is in block 6, which meets blocks 5, 6 (local), 0 (global), 2 and 5 (stride):
    // keys 0-1, 4-5, 10-11, 12-13, i.e. 8 of 14.
    const Mask mask = block_sparse_mask(2, 2, 1, 3);
    int keys = 0;
    for (int32_t k = 0; k <= 13; ++k) keys += mask(13, k);
    REQUIRE(keys == 8);
    CHECK(flops_at(*dense, 13) - flops_at(*sp, 13) == Approx(4.0 * (14 - 8) * 64));
  }
}
