#include "vulkan/stage_fixtures.h"

#include <memory>

namespace semline::vktest {

vk::VulkanBackend& shared_backend(bool subgroups) {
  // Destroyed at exit, before the leak check: the driver's objects are reachable only through
  // memory LeakSanitizer does not scan, so a backend left alive reads as leaks.
  static std::unique_ptr<vk::VulkanBackend> backends[2];
  std::unique_ptr<vk::VulkanBackend>& b = backends[subgroups ? 1 : 0];
  if (!b) b = make_backend(subgroups);
  return *b;
}

Layer::Layer(bool subgroups, RopeType rope_type, Heads h)
    : hp(testing::layer_hparams(rope_type, h, 16)), be(&shared_backend(subgroups)) {}

Vec added(Backend& be, const Rows& out) {
  const std::vector<float> got = read_back(be, out.dev.t);
  Vec d(got.size());
  for (size_t i = 0; i < got.size(); ++i) d[i] = static_cast<double>(got[i]) - out.host[i];
  return d;
}

}  // namespace semline::vktest
