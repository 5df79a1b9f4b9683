// The plugins of this build, loaded once per test process from the build's plugin folder.
#pragma once

#include "core/host/registry.h"

namespace semline::testing {

const StageRegistry& built_plugins();

}  // namespace semline::testing
