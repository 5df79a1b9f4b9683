// The boundary between the host and plugin code inside registered entries: every callable an
// entry carries is wrapped so that whatever it throws (any std::exception, or anything else)
// leaves as one semline::Error prefixed with the entry's key and plugin, e.g.
//   "sampler.typical.any (plugin 'sampler-typical'): typical_p must be positive".
// The stages, tokenizers and samplers the factories make are wrapped in the same way (every
// virtual call guarded), and a sampler is held to the Candidates contract: one that empties the
// set or selects outside it is named. A factory that returns nothing is named too.
#pragma once

#include <string>

#include "semline/registry.h"

namespace semline {

void guard_stage_entry(StageEntry& e, const std::string& key, const std::string& plugin);
void guard_backend_entry(BackendEntry& e, const std::string& key, const std::string& plugin);
void guard_arch(ArchTemplate& a, const std::string& key, const std::string& plugin);
void guard_proposer_entry(ProposerEntry& e, const std::string& key, const std::string& plugin);
void guard_comm_entry(CommEntry& e, const std::string& key, const std::string& plugin);

}  // namespace semline
