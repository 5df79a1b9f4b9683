// A plugin whose static initialiser throws while the dynamic loader opens it. No exception can
// leave dlopen: the host must name this file and stop with one line, not abort.
#include <semline/plugin.h>

#include <stdexcept>

namespace {

struct ThrowsAtLoad {
  ThrowsAtLoad() { throw std::runtime_error("deliberate failure in a static initialiser"); }
};
const ThrowsAtLoad at_load;

void register_all(semline::Registry&) {}

}  // namespace

SEMLINE_PLUGIN("test-static-throws", "1.0.0", "Throws from a static initialiser", register_all)
