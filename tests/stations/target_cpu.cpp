#include <memory>

#include "backend/cpu_backend.h"
#include "register.h"
#include "stations/targets.h"

namespace semline::stationtest {

const testing::RecordingRegistry& Cpu::entries() { return registered<cpu::register_cpu>(); }

bool Cpu::quantized_input(DType dt) { return cpu::takes_quantized_input(dt); }

// Three threads, so that work split across the pool (and its remainders) is part of every test.
const std::vector<Setup>& Cpu::setups() {
  static std::vector<std::unique_ptr<cpu::CpuBackend>> backends;
  static const std::vector<Setup> s = [] {
    std::vector<Setup> v;
    for (cpu::Isa isa : cpu::kAllIsas) {
      if (!cpu::isa_supported(isa)) continue;
      backends.push_back(std::make_unique<cpu::CpuBackend>(3, isa));
      v.push_back({std::string("cpu ") + cpu::isa_name(isa) + " kernels", backends.back().get(), &entries(),
                   &Cpu::quantized_input});
    }
    return v;
  }();
  return s;
}

}  // namespace semline::stationtest
