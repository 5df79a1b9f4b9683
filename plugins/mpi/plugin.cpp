// The entry point of the mpi plugin.
#include <semline/plugin.h>

#include "mpi_comm.h"

namespace {

void register_mpi(semline::Registry& registry) { registry.add_comm(semline::mpi::comm_entry()); }

}  // namespace

SEMLINE_PLUGIN("mpi", "0.1.0", "communicator \"mpi\": tensor parallelism across the processes mpirun starts",
               register_mpi)
