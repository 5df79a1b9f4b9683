#include <memory>

#include "backend/vulkan_backend.h"
#include "register.h"
#include "stations/targets.h"

namespace semline::stationtest {

const testing::RecordingRegistry& Vulkan::entries() { return registered<vk::register_vulkan>(); }

std::string Vulkan::unavailable() {
  static const std::string why = [] {
    std::string s;
    for (const std::string& r : vk::probe_vulkan()) s += (s.empty() ? "" : "; ") + r;
    return s;
  }();
  return why;
}

// One backend per reduction path for the whole process: on llvmpipe building a pipeline (LLVM
// compiles it) costs more than running a case, and a backend keeps the pipelines it built, so
// the tests share them. Destroyed at exit, before the leak check: the driver's objects are
// reachable only through memory LeakSanitizer does not scan, so a backend left alive reads as
// leaks.
const std::vector<Setup>& Vulkan::setups() {
  static std::vector<std::unique_ptr<vk::VulkanBackend>> backends;
  static const std::vector<Setup> s = [] {
    vk::BackendOptions o;
    const bool subgroups = vk::Device(o.device).caps.subgroup_arithmetic;
    std::vector<Setup> v;
    for (bool sg : subgroups ? std::vector<bool>{true, false} : std::vector<bool>{false}) {
      o.subgroups = sg;
      backends.push_back(std::make_unique<vk::VulkanBackend>(o));
      v.push_back({sg ? "vulkan subgroups" : "vulkan shared memory", backends.back().get(), &entries(), &Vulkan::quantized_input});
    }
    return v;
  }();
  return s;
}

}  // namespace semline::stationtest
