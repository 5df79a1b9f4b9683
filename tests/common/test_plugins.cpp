#include "common/test_plugins.h"

#include <stdexcept>

#include "core/host/plugin_host.h"

namespace semline::testing {

const StageRegistry& built_plugins() {
  static StageRegistry* reg = [] {
    auto* r = new StageRegistry();  // lives for the process, like the libraries it points into
    static PluginHost host(*r);
    auto refused = host.load_all({SEMLINE_PLUGIN_DIR});
    if (!refused.empty()) throw std::runtime_error("a built plugin was refused: " + refused.front());
    return r;
  }();
  return *reg;
}

}  // namespace semline::testing
