// A plugin from a future ABI: the descriptor is written by hand with abi_major 999. If the host
// ignored the major it would register the sampler below, which the tests would notice.
#include <semline/plugin.h>

#include "select.h"

namespace {
void register_all(semline::Registry& r) {
  r.add_stage(test_plugins::select_entry<test_plugins::Never>("from_abi_999", "must never be registered"));
}
}  // namespace

extern "C" SEMLINE_EXPORT const semline_plugin_info* semline_plugin_entry(uint32_t) {
  static const semline_plugin_info info = {999, 0, "test-wrong-abi", "9.9.9", "Built for ABI 999", register_all};
  return &info;
}
