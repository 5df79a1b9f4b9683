// A plugin built against the previous major of the SDK: its descriptor says so (written by hand,
// as an old SEMLINE_PLUGIN would have). The host must refuse it before reading further.
#include <semline/plugin.h>

#include "select.h"

namespace {
void register_all(semline::Registry& r) {
  r.add_stage(test_plugins::select_entry<test_plugins::Never>("from_old_major", "must never be registered"));
}
}  // namespace

extern "C" SEMLINE_EXPORT const semline_plugin_info* semline_plugin_entry(uint32_t) {
  static const semline_plugin_info info = {SEMLINE_ABI_MAJOR - 1, 0, "test-old-major", "1.0.0", "Built for the previous ABI major",
                                           register_all};
  return &info;
}
