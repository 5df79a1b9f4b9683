// One valid entry and one with an empty variant: the host must refuse the whole plugin.
#include <semline/plugin.h>

#include "select.h"

namespace {
void register_all(semline::Registry& r) {
  r.add_stage(test_plugins::select_entry<test_plugins::Never>("valid_part", "a well-formed entry"));
  r.add_stage(test_plugins::select_entry<test_plugins::Never>("", "an entry without a variant"));
}
}  // namespace

SEMLINE_PLUGIN("test-malformed", "1.0.0", "Registers a malformed entry", register_all)
