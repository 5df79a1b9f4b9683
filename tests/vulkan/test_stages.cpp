// What the vulkan backend does under the stations beyond the parity harness (tests/stations):
// dense attention splitting a step whose score rows outgrow its budget, decode steps replaying
// one recorded command buffer, tensors and streams of another backend refused, and what its
// entries refuse. Tolerance 1e-5 (harness.h: every weight dtype computes in float here).
#include <catch2/catch.hpp>

#include "stations/harness.h"
#include "vulkan/vulkan_test_util.h"

using namespace semline;
using namespace semline::vktest;
using stationtest::Layer;
using stationtest::Rows;
using testing::Cache;
using testing::kAttnTensors;
using testing::RefAttention;
using testing::separate;
using testing::StepData;
using testing::Vec;

namespace {

// A layer on the first vulkan setup (subgroup reductions where the device has them), and its
// backend as the vulkan backend.
struct VkLayer : Layer {
  explicit VkLayer(testing::Heads h = {}) : Layer(stationtest::Vulkan::setups().front(), RopeType::Normal, h) {}
  vk::VulkanBackend& vbe() { return static_cast<vk::VulkanBackend&>(be); }
};

}  // namespace

TEST_CASE("attention/dense splits a step whose score rows outgrow its scratch budget (needs a Vulkan device)",
          "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  // 8 heads attending over up to 340 positions: score rows of 512 keys are 16 KiB per token, so a
  // 1 MiB budget holds 64 tokens and a step of 100 takes two dispatches of the dense kernel.
  // Positions before this step were never written: their keys and values are the cache's zeros,
  // the same for both variants.
  VkLayer l;
  l.add_attention_weights(DType::F32);
  auto dense = l.build(StageKind::Attention, "dense", l.context("attn", kAttnTensors, 128), {{"scores_mib", int64_t{1}}});
  auto flash = l.build(StageKind::Attention, "flash", l.context("attn", kAttnTensors, 128));
  Cache cd(l.be, l.hp, DType::F32, 16, 24), cf(l.be, l.hp, DType::F32, 16, 24);
  StepData sd;
  for (int32_t i = 0; i < 100; ++i) sd.pos.push_back(240 + i), sd.seq.push_back(0);
  sd.tables.emplace_back();
  for (int32_t i = 0; i < 24; ++i) sd.tables[0].push_back(23 - i);
  const Batch b = sd.batch();
  Rows x(l.be, 100, 64), od(l.be, 100, 64), of(l.be, 100, 64);
  const uint64_t before = l.vbe().vstream().dispatches();
  dense->forward(x.t, od.t, Step{b, l.be.stream(), &cd.layer});
  CHECK(l.vbe().vstream().dispatches() - before == 7);  // q, k, v; rope and store; 2 x attention; o
  flash->forward(x.t, of.t, Step{b, l.be.stream(), &cf.layer});
  CHECK(rel_err(od.added(), of.added()) <= 1e-5);
}

TEST_CASE("decode steps replay one recorded command buffer and still see each step's data (needs a Vulkan device)",
          "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  VkLayer l;
  l.add_attention_weights(DType::Q8_0);
  l.model.add("norm", DType::F32, 64, 1, 1.0f);
  auto norm = l.build(StageKind::Norm, "rms", l.context("attn_norm", {{"weight", "norm"}}));
  auto flash = l.build(StageKind::Attention, "flash", l.context("attn", kAttnTensors));
  Cache c(l.be, l.hp, DType::F32, 4, 8);
  RefAttention ref{l.hp, separate(l.model.values("q"), l.model.values("k"), l.model.values("v")), l.model.values("o"),
                   nullptr, DType::F32, {}};
  Rows h(l.be, 1, 64), x(l.be, 1, 64);
  const uint64_t replays = l.vbe().vstream().replays();
  size_t sets_after_first = 0;
  for (int32_t pos = 0; pos < 12; ++pos) {
    INFO("position " << pos);
    // A fresh h each step, uploaded into the same buffer: only data changes between steps.
    const std::vector<float> hv = random_floats(64);
    l.be.copy_to_device(hv.data(), h.t, 256, l.be.stream());
    StepData sd;
    sd.pos = {pos};
    sd.seq = {0};
    sd.tables = {{3, 0, 6}};
    Batch b = sd.batch();
    b.step = static_cast<uint64_t>(pos) + 1;
    norm->forward(h.t, x.t, Step{b, l.be.stream(), nullptr});
    flash->forward(x.t, h.t, Step{b, l.be.stream(), &c.layer});
    const std::vector<float> xv = stationtest::read_back(l.be, x.t), got = stationtest::read_back(l.be, h.t);
    const Vec want = ref.step({Vec(xv.begin(), xv.end())}, {pos}, {0})[0];
    Vec added(64);
    for (int i = 0; i < 64; ++i) added[i] = static_cast<double>(got[i]) - hv[i];
    CHECK(rel_err(added, want) <= 1e-5);
    if (pos == 0) sets_after_first = l.vbe().kernels().cached_sets();
  }
  CHECK(l.vbe().vstream().replays() - replays >= 10);
  CHECK(l.vbe().kernels().cached_sets() == sets_after_first);  // nothing allocated per token
}

TEST_CASE("stages refuse another backend's tensors and the cpu backend (needs a Vulkan device)", "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  VkLayer l;
  l.model.add("norm", DType::F32, 64, 1, 1.0f);
  auto norm = l.build(StageKind::Norm, "rms", l.context("attn_norm", {{"weight", "norm"}}));
  StepData sd;
  sd.pos = {0};
  sd.seq = {0};
  const Batch b = sd.batch();
  std::vector<float> host(64);
  const Tensor on_host = make_tensor(DType::F32, {64, 1}, host.data());
  Rows out(l.be, 1, 64);
  CHECK_THROWS_WITH(norm->forward(on_host, out.t, Step{b, l.be.stream(), nullptr}),
                    Catch::Contains("input F32 [64, 1] is not in this vulkan backend's memory"));
  Rows in(l.be, 1, 64);
  auto other = make_backend();
  CHECK_THROWS_WITH(norm->forward(in.t, out.t, Step{b, other->stream(), nullptr}),
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
  hp.n_head = 8;
  hp.n_head_kv = 2;
  hp.head_dim = 8;
  hp.rope_dim = 8;
  hp.sliding_window = 4096;
  FakeModel model;
  StageContext ctx;
  ctx.model = &model;
  ctx.hp = &hp;
  ctx.station = "attention";
  for (const char* variant : {"dense", "flash"}) {
    INFO(variant);
    const auto why = vulkan_entries().stage(StageKind::Attention, variant).supports(ctx);
    REQUIRE(why.size() == 1);
    CHECK_THAT(why[0], Catch::Contains("sliding window of 4096"));
  }
  // The window runs here (its kernels start at the window's first key); block-sparse does not.
  CHECK(vulkan_entries().stage(StageKind::Attention, "sliding_window").supports(ctx).empty());
  for (const StageEntry& e : vulkan_entries().stages) CHECK(e.variant != "block_sparse");
}

TEST_CASE("a Q8_0 KV cache of heads that do not fill whole words is refused by the vulkan attention (needs a "
          "Vulkan device)",
          "[stages]") {
  SEMLINE_REQUIRE_VULKAN();
  VkLayer l({4, 2, 32, 32});  // heads of one Q8_0 block, 34 bytes: rows would share words
  l.add_attention_weights(DType::F32);
  auto flash = l.build(StageKind::Attention, "flash", l.context("attn", kAttnTensors));
  Cache c(l.be, l.hp, DType::Q8_0, 4, 4);
  StepData sd;
  sd.pos = {0};
  sd.seq = {0};
  sd.tables = {{0}};
  const Batch b = sd.batch();
  Rows x(l.be, 1, 64), out(l.be, 1, 64);
  CHECK_THROWS_WITH(flash->forward(x.t, out.t, Step{b, l.be.stream(), &c.layer}),
                    Catch::Contains("KV cache k Q8_0 [32, 2, 4, 4]: the vulkan attention writes a q8_0 cache in "
                                    "whole 32-bit words") &&
                        Catch::Contains("multiple of 64; this model's is 32 (use kv_cache.dtype = \"f16\")"));
}
