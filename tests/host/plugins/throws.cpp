// Adds an entry, then fails: the host must discard the entry with the plugin.
#include <semline/plugin.h>

#include "select.h"

namespace {
void register_all(semline::Registry& r) {
  r.add_stage(test_plugins::select_entry<test_plugins::Never>("orphan", "added before the failure"));
  throw semline::Error("deliberate failure after adding an entry");
}
}  // namespace

SEMLINE_PLUGIN("test-throws", "1.0.0", "Fails during registration", register_all)
