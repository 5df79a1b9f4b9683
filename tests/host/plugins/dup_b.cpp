// Registers sampler.first.any (also registered by test-dup-a) and sampler.max_logit.any, which
// survives when a preference settles the clash against this plugin.
#include <semline/plugin.h>

#include "select.h"

namespace {
void register_all(semline::Registry& r) {
  r.add_stage(test_plugins::select_entry<test_plugins::Never>("first", "selects the first candidate (from b)"));
  r.add_stage(test_plugins::select_entry<test_plugins::HigherLogit>("max_logit", "selects the highest logit"));
}
}  // namespace

SEMLINE_PLUGIN("test-dup-b", "1.0.0", "Second owner of sampler.first.any", register_all)
