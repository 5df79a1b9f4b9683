// The communicator a config's [parallel] table names, made by its plugin.
#pragma once

#include <memory>

#include <semline/comm.h>

#include "core/config/config.h"
#include "core/host/registry.h"

namespace semline {

// Null when [parallel] asks for one rank (tensor = pipeline = 1). Throws naming the key when the
// communicator is unknown, cannot run here (not started by its launcher), refuses its parameters,
// or joins another number of ranks than tensor x pipeline.
std::unique_ptr<Communicator> make_communicator(const Config& config, const StageRegistry& registry);

}  // namespace semline
