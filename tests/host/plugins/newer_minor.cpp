// A plugin built against a newer minor of this SDK's major: it may read fields of the host's
// structures this host does not have, so the host must refuse it.
#include <semline/plugin.h>

#include "select.h"

namespace {
void register_all(semline::Registry& r) {
  r.add_stage(test_plugins::select_entry<test_plugins::Never>("from_newer_minor", "must never be registered"));
}
}  // namespace

extern "C" SEMLINE_EXPORT const semline_plugin_info* semline_plugin_entry(uint32_t) {
  static const semline_plugin_info info = {SEMLINE_ABI_MAJOR, SEMLINE_ABI_MINOR + 1, "test-newer-minor", "1.0.0",
                                           "Built for a newer ABI minor", register_all};
  return &info;
}
