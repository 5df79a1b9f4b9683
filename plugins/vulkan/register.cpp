#include "register.h"

#include <mutex>

#include <semline/error.h>

#include "backend/vulkan_backend.h"
#include "stages/common.h"
#include "stages/stages.h"
#include "stages/station_kernels.h"
#include "stations/factories.h"

namespace semline::vk {
namespace {

StageEntry entry(StageKind kind, std::string variant, std::string description, int rank,
                 std::function<std::unique_ptr<Stage>(const StageContext&)> make) {
  return stations::stage_entry(kind, std::move(variant), "vulkan", std::move(description), rank, std::move(make));
}

BackendEntry backend_entry() {
  BackendEntry b;
  b.name = "vulkan";
  b.description = "a Vulkan compute device: weights in device memory, compute shaders, one command buffer per step";
  ParamSpec device;
  device.name = "device";
  device.type = ParamType::String;
  device.default_value = std::string();
  device.doc = "device index or part of its name; empty: the first discrete GPU, else any device";
  ParamSpec subgroups;
  subgroups.name = "subgroups";
  subgroups.type = ParamType::Bool;
  subgroups.default_value = true;
  subgroups.doc = "reduce with subgroup operations where the device has them; false: shared memory only";
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
  stations::add_stations(r, "vulkan", [](const StageContext& ctx) -> stations::Kernels& {
    return vulkan_backend_of(ctx).station_kernels();
  });

  StageEntry dense = entry(StageKind::Attention, "dense",
                           "the reference: causal GQA attention (RoPE or none, q/k/v or fused qkv, optional biases), "
                           "full score row per query in device memory",
                           10, make_attention_dense);
  dense.params = {stations::int_spec("scores_mib", 32, 1, 4096,
                                     "device memory for score rows (MiB); steps needing more run in several dispatches")};
  dense.caps.max_head_dim = kMaxHeadDim;
  dense.supports = attention_supports;
  r.add_stage(std::move(dense));

  StageEntry flash = entry(StageKind::Attention, "flash",
                           "causal GQA attention (RoPE or none, q/k/v or fused qkv, optional biases), key tiles in "
                           "shared memory with an online softmax",
                           20,
                           make_attention_flash);
  flash.params = {stations::int_spec("block", 64, 1, static_cast<double>(kMaxFlashTile), "keys per tile")};
  flash.caps.max_head_dim = kMaxHeadDim;
  flash.supports = attention_supports;
  r.add_stage(std::move(flash));

  StageEntry moe = entry(StageKind::Ffn, "moe",
                         "mixture of SwiGLU experts (Mixtral): router softmax and top n_expert_used on the device, "
                         "expert-indexed products reading only the chosen experts",
                         10, make_ffn_moe);
  moe.supports = ffn_moe_supports;
  r.add_stage(std::move(moe));
}

}  // namespace semline::vk
