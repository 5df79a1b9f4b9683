// Everything the cpu plugin adds to a registry: the backend and its llama-family stages.
#pragma once

#include <semline/registry.h>

namespace semline::cpu {

void register_cpu(Registry& registry);

}  // namespace semline::cpu
