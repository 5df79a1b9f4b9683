// The registry entries of the sampler plugin: one per chain member, each with its parameters.
#pragma once

#include <vector>

#include "semline/registry.h"

namespace semline::samplers {

// Parameter names are unique across entries (one [stages] sampler table feeds the whole chain),
// except repeat_last_n, which the penalties share with one meaning and one default.
std::vector<StageEntry> sampler_entries();

}  // namespace semline::samplers
