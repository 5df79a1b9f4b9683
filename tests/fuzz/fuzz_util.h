// What the libFuzzer harnesses share: reads the optimiser cannot drop, property checks that stop
// the run with a message, and the model files and plugins of this build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace semline::fuzz {

// Reads the first and last byte of a range: AddressSanitizer reports it when either lies outside
// the memory the range should be in.
inline void touch(const void* p, size_t n) {
  static volatile uint8_t sink;
  if (n == 0) return;
  const auto* b = static_cast<const uint8_t*>(p);
  sink = static_cast<uint8_t>(sink + b[0] + b[n - 1]);
}

// A broken promise of the code under test: libFuzzer keeps the input as a crash reproducer.
[[noreturn]] inline void broken(std::string_view what) {
  std::fprintf(stderr, "fuzz: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}
inline void expect(bool ok, std::string_view what) {
  if (!ok) broken(what);
}

inline std::string model_path(std::string_view relative) {
  return std::string(SEMLINE_MODELS_DIR) + "/" + std::string(relative);
}

// Logs off: a harness runs millions of inputs and the messages are the exceptions it catches.
void quiet_logs();

}  // namespace semline::fuzz

// Defines libFuzzer's initialiser: logs off, then the warm-up expression once before the first
// input (the files and tables every input uses, so the first input is not charged for them).
#define SEMLINE_FUZZ_INITIALIZE(...)                     \
  extern "C" int LLVMFuzzerInitialize(int*, char***) {   \
    ::semline::fuzz::quiet_logs();                       \
    __VA_ARGS__;                                         \
    return 0;                                            \
  }
