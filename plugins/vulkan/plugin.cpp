// The plugin's entry point: the only exported symbol of libsemline-vulkan.
#include <semline/plugin.h>

#include "register.h"

static void register_all(semline::Registry& r) { semline::vk::register_vulkan(r); }

SEMLINE_PLUGIN("vulkan", "0.1.0",
               "Vulkan compute backend (GLSL kernels, paged KV cache on the device) and stages for the llama, GPT-2 "
               "and Mixtral families",
               register_all)
