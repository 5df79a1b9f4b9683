// The cpu backend's kernels for the stations written once (stations/kernels.h): linear products
// on the instruction set's tiles (weights repacked at bind), the activation fused into the gate
// and up products' epilogue, norms and gathers over the worker pool.
#pragma once

#include <memory>

#include "backend/cpu_backend.h"
#include "stations/kernels.h"

namespace semline::cpu {

std::unique_ptr<stations::Kernels> make_station_kernels(CpuBackend& be);

}  // namespace semline::cpu
