// The cpu backend's Mamba kernels (stations/ssm.h): the causal convolution and the selective scan
// over the worker pool, channels split between workers, each sequence's tokens in order.
#pragma once

#include <memory>

#include "backend/cpu_backend.h"
#include "stations/ssm.h"

namespace semline::cpu {

std::unique_ptr<stations::SsmKernels> make_ssm_kernels(CpuBackend& be);

}  // namespace semline::cpu
