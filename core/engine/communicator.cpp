#include "core/engine/communicator.h"

#include "core/graph/graph.h"
#include "core/host/plugin_log.h"
#include "core/util/text.h"

namespace semline {

std::unique_ptr<Communicator> make_communicator(const Config& config, const StageRegistry& registry) {
  const auto& par = config.parallel;
  const int ranks = par.tensor * par.pipeline;
  if (ranks <= 1) return nullptr;
  const std::string where = (par.pos.file.empty() ? std::string() : par.pos.str() + ": ") + "[parallel] tensor = " +
                            std::to_string(par.tensor) + ", pipeline = " + std::to_string(par.pipeline) +
                            ", comm = \"" + par.comm + "\": ";
  const RegisteredComm* e = registry.find_comm(par.comm);
  if (!e) {
    std::vector<std::string> names;
    for (const RegisteredComm* c : registry.comms()) names.push_back(c->entry.name);
    throw Error(where + "no such communicator" + did_you_mean(par.comm, names) + "; known: " +
                (names.empty() ? std::string("none (the mpi plugin is built where libopenmpi-dev is installed)") : join(names)));
  }
  if (e->entry.probe)
    if (const auto reasons = e->entry.probe(); !reasons.empty()) throw Error(where + reasons.front());
  const Params params = validate_params(par.params, e->entry.params, "parallel");
  std::unique_ptr<Communicator> comm = e->entry.create(params, plugin_log("comm " + par.comm));
  if (comm->size() != ranks)
    throw Error(where + "the launcher started " + std::to_string(comm->size()) + " ranks; start as many as the "
                "line is split across (mpirun -np " + std::to_string(ranks) + ")");
  return comm;
}

}  // namespace semline
