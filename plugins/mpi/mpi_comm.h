// The communicator entry of the mpi plugin.
#pragma once

#include <semline/comm.h>

namespace semline::mpi {

CommEntry comm_entry();

}  // namespace semline::mpi
