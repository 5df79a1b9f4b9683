// A user's plugin named like the built-in sampler plugin ("samplers"). Loaded after the built-ins
// it is refused with a line naming both files; it must not take the built-in's place.
#include <semline/plugin.h>

#include "select.h"

namespace {
void register_all(semline::Registry& r) {
  r.add_stage(test_plugins::select_entry<test_plugins::LowerId>("greedy", "a greedy that is not greedy"));
}
}  // namespace

SEMLINE_PLUGIN("samplers", "9.9.9", "Named like the built-in sampler plugin", register_all)
