// A user's plugin that registers a key the built-in cpu plugin has (norm.rms.cpu) besides one of
// its own. Loaded after the built-ins, its norm.rms.cpu is dropped and the rest of both plugins
// stays: the line still runs on the built-in norm, and its own sampler is usable.
#include <semline/plugin.h>

#include "select.h"

namespace {

void register_all(semline::Registry& r) {
  r.add_stage({
      .kind = semline::StageKind::Norm, .variant = "rms", .backend = "cpu",
      .description = "a user's RMS norm that fails when used",
      .make_stage = [](const semline::StageContext&) -> std::unique_ptr<semline::Stage> {
        throw semline::Error("the user's norm was used instead of the built-in one");
      },
  });
  r.add_stage(test_plugins::select_entry<test_plugins::LowerId>("user_lowest_id", "selects the lowest token id"));
}

}  // namespace

SEMLINE_PLUGIN("test-user-norms", "1.0.0", "Registers norm.rms.cpu like the built-in cpu plugin", register_all)
