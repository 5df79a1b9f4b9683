// The backends the station harness runs every station on. A target is a backend plugin; a
// setup is one way that backend computes (cpu: each instruction set this machine runs; vulkan:
// each reduction path its device offers). The harness's tests are written once and instantiated
// per target (TEMPLATE_TEST_CASE over SEMLINE_STATION_TARGETS): ctest lists "NAME - Cpu",
// "NAME - Vulkan", and a target that cannot run here (no Vulkan device) reports itself skipped.
//
// A new backend adds a type here with its setups (target_<name>.cpp, linked with the backend's
// implementation library) and its name in SEMLINE_STATION_TARGETS; the tests stay as they are.
#pragma once

#include <string>
#include <vector>

#include <semline/backend.h>

#include "common/plugin_fixtures.h"
#include "common/require.h"

namespace semline::stationtest {

struct Setup {
  std::string name;  // what INFO prints: "cpu avx2 kernels", "vulkan subgroups"
  Backend* be;
  const testing::RecordingRegistry* entries;  // the backend plugin's registrations
  // Whether this backend feeds products over weights of a dtype with their input rounded to 8
  // bits (the cpu's Q8_0 / Q4_0 kernels); the float64 reference rounds the same inputs.
  bool (*quantized_input)(DType);
};

// A plugin's registrations, made once: registered<cpu::register_cpu>().
template <void (*Register)(Registry&)>
const testing::RecordingRegistry& registered() {
  static const testing::RecordingRegistry r = [] {
    testing::RecordingRegistry reg;
    Register(reg);
    return reg;
  }();
  return r;
}

// Each target: kName (the backend's name in a config, and the feature SEMLINE_REQUIRE names),
// why it cannot run here, its registrations, its setups, and which weight dtypes it feeds with
// 8-bit input.
struct Cpu {
  static constexpr const char* kName = "cpu";
  static std::string unavailable() { return {}; }
  static bool quantized_input(DType dt);
  // Whether its attention stores a KV cache of dtype dt; a Q8_0 cache, for head sizes that are
  // multiples of kQ8KvHead.
  static bool kv_cache(DType dt) { return dt == DType::F32 || dt == DType::F16 || dt == DType::Q8_0; }
  static constexpr int64_t kQ8KvHead = 32;
  static constexpr bool kQ8Query = true;  // its cores meet Q8_0 keys with an 8-bit query
  static const testing::RecordingRegistry& entries();  // the plugin's registrations
  static const std::vector<Setup>& setups();
};

struct Vulkan {
  static constexpr const char* kName = "vulkan";
  static std::string unavailable();  // why no Vulkan device can run here (empty: one can)
  static bool quantized_input(DType) { return false; }  // every dtype dequantised exactly
  static bool kv_cache(DType dt) { return dt == DType::F32 || dt == DType::F16 || dt == DType::Q8_0; }
  static constexpr int64_t kQ8KvHead = 64;  // a row of whole 32-bit words
  static constexpr bool kQ8Query = false;
  static const testing::RecordingRegistry& entries();
  static const std::vector<Setup>& setups();
};

}  // namespace semline::stationtest

// Written as bare names so that ctest's test names read "NAME - Cpu": the tests say
// `using namespace semline::stationtest`.
#if defined(SEMLINE_TEST_VULKAN)
#define SEMLINE_STATION_TARGETS Cpu, Vulkan
#else
#define SEMLINE_STATION_TARGETS Cpu
#endif

// In a TEMPLATE_TEST_CASE over targets: skips (or fails where SEMLINE_REQUIRE names it) a target
// that cannot run here.
#define REQUIRE_TARGET()                                                  \
  do {                                                                    \
    if (const std::string why_ = TestType::unavailable(); !why_.empty())  \
      SEMLINE_SKIP_TEST(TestType::kName, why_);                           \
  } while (0)

// REQUIRE_TARGET, then a loop over the target's setups.
#define FOR_EACH_SETUP(s) \
  REQUIRE_TARGET();       \
  for (const ::semline::stationtest::Setup& s : TestType::setups())
