// ffn/moe decode steps on the device: one recorded command buffer replayed, each step's data
// routed to its own experts (the routing, weights and expert products against float64 on every
// backend are the parity harness's, tests/stations/test_moe.cpp). Tolerance 1e-5 (harness.h).
#include <catch2/catch.hpp>

#include "stations/harness.h"
#include "vulkan/vulkan_test_util.h"

using namespace semline;
using namespace semline::vktest;
using stationtest::Layer;
using stationtest::read_back;
using stationtest::Rows;
using testing::StepData;
using testing::Vec;

TEST_CASE("ffn/moe decode steps replay one recorded command buffer and route each step's data (needs a Vulkan "
          "device)",
          "[stages][moe]") {
  SEMLINE_REQUIRE_VULKAN();
  Layer l(stationtest::Vulkan::setups().front());
  l.hp.n_expert = 8;
  l.hp.n_expert_used = 2;
  testing::add_moe_weights(l.model, l.hp, DType::Q8_0);
  const Weight& scale = l.model.add("norm", DType::F32, 64, 1, 1.0f);
  auto norm = l.build(StageKind::Norm, "rms", l.context("ffn_norm", {{"weight", "norm"}}));
  auto ffn = l.build(StageKind::Ffn, "moe",
                     l.context("ffn", {{"router", "router"}, {"gate_exps", "gate_exps"}, {"up_exps", "up_exps"},
                                       {"down_exps", "down_exps"}}));
  vk::VulkanBackend& be = static_cast<vk::VulkanBackend&>(l.be);
  Rows h(be, 1, 64), x(be, 1, 64);
  const uint64_t replays = be.vstream().replays();
  size_t sets_after_first = 0;
  for (int32_t pos = 0; pos < 12; ++pos) {
    INFO("step " << pos);
    // A fresh h each step, uploaded into the same buffer: only data changes between steps, and
    // the tokens route to different experts.
    std::vector<float> hv = random_floats(64);
    while (!testing::router_separates(l.model.values("router"), testing::rmsnorm(Vec(hv.begin(), hv.end()), scale, l.hp.norm_eps),
                                      l.hp.n_expert_used))
      hv = random_floats(64);
    be.copy_to_device(hv.data(), h.t, 256, be.stream());
    StepData sd;
    sd.pos = {pos};
    sd.seq = {0};
    Batch b = sd.batch();
    b.step = static_cast<uint64_t>(pos) + 1;
    norm->forward(h.t, x.t, Step{b, be.stream(), nullptr});
    ffn->forward(x.t, h.t, Step{b, be.stream(), nullptr});
    const std::vector<float> xv = read_back(be, x.t), got = read_back(be, h.t);
    const Vec want = testing::moe_reference(l.model, l.hp, Vec(xv.begin(), xv.end()));
    Vec added(64);
    for (int i = 0; i < 64; ++i) added[i] = static_cast<double>(got[i]) - hv[i];
    CHECK(rel_err(added, want) <= 1e-5);
    if (pos == 0) sets_after_first = be.kernels().cached_sets();
  }
  CHECK(be.vstream().replays() - replays >= 10);
  CHECK(be.kernels().cached_sets() == sets_after_first);  // nothing allocated per token
}
