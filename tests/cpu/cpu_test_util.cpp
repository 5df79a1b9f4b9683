#include "cpu/cpu_test_util.h"

namespace semline::cputest {

std::vector<cpu::Isa> runnable_isas() {
  std::vector<cpu::Isa> v;
  for (cpu::Isa i : cpu::kAllIsas)
    if (cpu::isa_supported(i)) v.push_back(i);
  return v;
}

std::vector<double> to_double(const float* p, int64_t n) { return std::vector<double>(p, p + n); }

}  // namespace semline::cputest
