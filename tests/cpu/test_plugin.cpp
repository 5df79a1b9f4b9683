// The built plugin library: its one entry point and what it registers.
#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <semline/plugin.h>

#include "cpu/cpu_test_util.h"
#include "stations/targets.h"

using namespace semline;

TEST_CASE("libsemline-cpu exports its entry and registers the backend and twelve stages", "[plugin]") {
  const std::string path = std::string(SEMLINE_PLUGIN_DIR) + "/libsemline-cpu.so";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  INFO(path << ": " << (lib ? "" : dlerror()));
  REQUIRE(lib != nullptr);
  using Entry = const semline_plugin_info* (*)(uint32_t);
  auto entry = reinterpret_cast<Entry>(dlsym(lib, SEMLINE_PLUGIN_ENTRY_SYMBOL));
  REQUIRE(entry != nullptr);
  const semline_plugin_info* info = entry(SEMLINE_ABI_MAJOR);
  REQUIRE(info->abi_major == SEMLINE_ABI_MAJOR);
  REQUIRE(std::string(info->name) == "cpu");
  cputest::RecordingRegistry r;
  info->register_all(r);
  REQUIRE(r.backends.size() == 1);
  REQUIRE(r.stages.size() == stationtest::Cpu::entries().stages.size());
  REQUIRE(r.stages.size() == 12);
  // The library stays loaded: its entries hold code from it.
}
