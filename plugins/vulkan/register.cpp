#include "register.h"

#include <mutex>

#include <semline/error.h>

#include "backend/vulkan_backend.h"
#include "ops/attention_cores.h"
#include "ops/station_kernels.h"
#include "stations/factories.h"

namespace semline::vk {
namespace {

BackendEntry backend_entry() {
  BackendEntry b;
  b.name = "vulkan";
  b.description = "a Vulkan compute device: weights in device memory, compute shaders, one command buffer per step";
  const ParamSpec device = stations::string_spec(
      "device", "", "device index or part of its name; empty: the first discrete GPU, else any device");
  const ParamSpec subgroups = stations::bool_spec(
      "subgroups", true, "reduce with subgroup operations where the device has them; false: shared memory only");
  b.params = {device, subgroups};
  b.probe = probe_vulkan;
  b.create = [](const Params& p, const LogFn& log) -> std::unique_ptr<Backend> {
    BackendOptions o;
    if (p.values.count("device")) o.device = p.get_string("device");
    if (p.values.count("subgroups")) o.subgroups = p.get_bool("subgroups");
    return std::make_unique<VulkanBackend>(o, log);
  };
  return b;
}

}  // namespace

std::vector<std::string> probe_vulkan() {
  static std::once_flag once;
  static std::vector<std::string> reasons;
  std::call_once(once, [] {
    try {
      std::string why;
      std::vector<DeviceListing> ds = list_devices(&why);
      if (!why.empty()) {
        reasons.push_back(why);
        return;
      }
      if (ds.empty()) {
        reasons.push_back("no Vulkan device: the loader lists none (is a Vulkan driver installed?)");
        return;
      }
      for (const DeviceListing& d : ds)
        if (d.unusable.empty()) return;
      for (const DeviceListing& d : ds) reasons.push_back("device \"" + d.name + "\" " + d.unusable);
    } catch (const std::exception& e) {
      reasons.push_back(e.what());
    }
  });
  return reasons;
}

void register_vulkan(Registry& r) {
  r.add_backend(backend_entry());
  const stations::KernelsOf kernels = [](const StageContext& ctx) -> stations::Kernels& {
    return vulkan_backend_of(ctx).station_kernels();
  };
  stations::add_stations(r, "vulkan", kernels);
  stations::add_ssm_stations(r, "vulkan", kernels, [](const StageContext& ctx) -> stations::SsmKernels& {
    return vulkan_backend_of(ctx).ssm_kernels();
  });

  // Causal and sliding-window attention; the head dimension the kernels hold, and the score budget
  // of dense.
  const auto vulkan_limits = [](StageEntry& e) {
    e.caps.max_head_dim = kMaxHeadDim;
    e.supports = [base = e.supports](const StageContext& ctx) {
      std::vector<std::string> why = base(ctx);
      if (!ctx.hp) return why;
      const HParams& hp = *ctx.hp;
      const int64_t hd = hp.head_dim > 0 ? hp.head_dim : (hp.n_head > 0 ? hp.n_embd / hp.n_head : 0);
      if (hd % 2 != 0 || hd > kMaxHeadDim)
        why.push_back("head_dim " + std::to_string(hd) + " is odd or above " + std::to_string(kMaxHeadDim) +
                      ", the most the vulkan attention kernels hold");
      return why;
    };
  };
  StageEntry dense = stations::attention_entry("dense", "vulkan", kernels);
  dense.params = {stations::int_spec("scores_mib", 32, 1, 4096,
                                     "device memory for score rows (MiB); steps needing more run in several dispatches")};
  vulkan_limits(dense);
  r.add_stage(std::move(dense));
  StageEntry flash = stations::attention_entry("flash", "vulkan", kernels);
  flash.params = {stations::int_spec("block", stations::kDefaultBlock, 1, static_cast<double>(kMaxFlashTile), "keys per tile")};
  vulkan_limits(flash);
  r.add_stage(std::move(flash));
  StageEntry window = stations::attention_entry("sliding_window", "vulkan", kernels);
  for (ParamSpec& p : window.params)
    if (p.name == "block") p.max = static_cast<double>(kMaxFlashTile);
  vulkan_limits(window);
  r.add_stage(std::move(window));
}

}  // namespace semline::vk
