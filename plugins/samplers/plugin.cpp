// The entry point of the sampler plugin.
#include <semline/plugin.h>

#include "entries.h"

namespace {

void register_samplers(semline::Registry& registry) {
  for (semline::StageEntry& e : semline::samplers::sampler_entries()) registry.add_stage(std::move(e));
}

}  // namespace

SEMLINE_PLUGIN("samplers", "0.1.0",
               "sampler chain members: greedy, temperature, top-k, top-p, min-p, penalties, logit bias, content filter, seeded draw",
               register_samplers)
