// Everything the vulkan plugin adds to a registry: the backend and its stages (llama, GPT-2, Mixtral).
#pragma once

#include <semline/registry.h>

namespace semline::vk {

void register_vulkan(Registry& registry);

// Reasons no Vulkan device can run the backend here (no loader, no usable device); empty: one
// can. Asked once per process.
std::vector<std::string> probe_vulkan();

}  // namespace semline::vk
