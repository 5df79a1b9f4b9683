// Checks of what a plugin hands the registry, made before anything of it is committed, so a
// malformed entry is refused at load instead of failing later inside the graph or a factory.
// Each throws one semline::Error naming the entry and field and what would be valid.
#pragma once

#include <string_view>

#include "semline/registry.h"

namespace semline {

void check_plugin_name(std::string_view name);
void check_stage_entry(const StageEntry& e);
void check_backend_entry(const BackendEntry& e);
void check_arch(const ArchTemplate& a);
void check_proposer_entry(const ProposerEntry& e);
void check_comm_entry(const CommEntry& e);

}  // namespace semline
