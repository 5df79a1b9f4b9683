#include "fuzz_util.h"

#include <spdlog/spdlog.h>

namespace semline::fuzz {

void quiet_logs() { spdlog::set_level(spdlog::level::off); }

}  // namespace semline::fuzz
