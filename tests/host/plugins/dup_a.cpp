// Registers sampler.first.any, which test-dup-b registers too.
#include <semline/plugin.h>

#include "select.h"

namespace {
void register_all(semline::Registry& r) {
  r.add_stage(test_plugins::select_entry<test_plugins::Never>("first", "selects the first candidate (from a)"));
}
}  // namespace

SEMLINE_PLUGIN("test-dup-a", "1.0.0", "First owner of sampler.first.any", register_all)
