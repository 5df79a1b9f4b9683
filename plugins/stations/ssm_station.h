// What ssm/mamba and ssm/mamba2 share: the mixer's shape from the model's ssm_* dimensions, the
// recurrent state it declares (Stage::state_sizes: the convolution's and the scan's pools), the
// check that a step carries that state, and what reading and writing it costs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <semline/error.h>

#include "stations/binding.h"
#include "stations/ssm.h"

namespace semline::stations {

class SsmStation : public Station {
 public:
  std::vector<int64_t> state_sizes() const override { return {shape_.conv_state(), shape_.ssm_state()}; }

 protected:
  SsmStation(const StageContext& ctx, Kernels& k, SsmKernels& s) : Station(ctx, k), s_(s) {
    shape_.d_inner = dim("ssm_d_inner");
    shape_.d_conv = dim("ssm_d_conv");
    shape_.d_state = dim("ssm_d_state");
  }

  // A dimension the model's metadata gives (llama.cpp's ssm.* keys); 0 where it gives none.
  int64_t dim(const char* key) const { return static_cast<int64_t>(hp_.extra_or(key, 0)); }

  void check_state(const Step& step) const {
    if (!step.state || step.state->pools.size() != 2)
      throw Error(label_ + ": the step carries no recurrent state (2 pools: the convolution's and the scan's)");
  }

  // Each of the step's sequences reads and writes its state once.
  double state_bytes(const Batch& b) const {
    return 8.0 * b.n_seqs * static_cast<double>(shape_.conv_state() + shape_.ssm_state());
  }

  SsmKernels& s_;
  SsmShape shape_;
  std::unique_ptr<SsmWeights> ssm_;  // bound by the station once its constants are read
};

}  // namespace semline::stations
