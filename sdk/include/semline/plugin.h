// semline SDK — the plugin entry point. The one header a plugin includes.
//
// A plugin is a shared library that exports exactly one symbol, semline_plugin_entry. The host
// calls it with its own ABI major; the returned descriptor starts with the plugin's ABI major and
// minor, which the host compares before reading anything else. Fields are only ever appended; each
// notes the minor that added it, and the host reads a field only when the plugin's minor has it.
//
// The ABI covers the layouts of every type in these headers. The major changes when one of them
// changes incompatibly; a plugin built against another major is refused with a message naming the
// file and both numbers. Plugins and host must share a C++ standard library (libstdc++, the same
// _GLIBCXX_USE_CXX11_ABI), since entries carry std::string, std::vector and std::function.
//
//   #include <semline/plugin.h>
//   static void register_all(semline::Registry& r) { r.add_stage({...}); }
//   SEMLINE_PLUGIN("my-plugin", "1.0.0", "What it adds, in one line", register_all)
#pragma once

#include <cstddef>
#include <cstdint>

#include "semline/registry.h"

#define SEMLINE_ABI_MAJOR 1u
#define SEMLINE_ABI_MINOR 0u

extern "C" {

struct semline_plugin_info {
  // -- ABI 1.0 --
  uint32_t abi_major;        // must stay the first field
  uint32_t abi_minor;
  const char* name;          // unique among plugins, e.g. "cpu"
  const char* version;       // the plugin's own version
  const char* description;   // one line
  void (*register_all)(semline::Registry& registry);  // may throw; the host discards the plugin
};

}  // extern "C"

static_assert(offsetof(semline_plugin_info, abi_major) == 0, "abi_major must come first");
static_assert(sizeof(semline_plugin_info) == 8 + 4 * sizeof(void*), "ABI 1.0 descriptor layout");

#define SEMLINE_PLUGIN_ENTRY_SYMBOL "semline_plugin_entry"

#if defined(_WIN32)
#define SEMLINE_EXPORT __declspec(dllexport)
#else
#define SEMLINE_EXPORT __attribute__((visibility("default")))
#endif

// Writes the entry point. The host passes its ABI major; the plugin answers with its descriptor
// whatever the number, so the host can name both in its refusal.
#define SEMLINE_PLUGIN(NAME, VERSION, DESCRIPTION, REGISTER_FN)                                \
  extern "C" SEMLINE_EXPORT const semline_plugin_info* semline_plugin_entry(uint32_t) {      \
    static const semline_plugin_info info = {SEMLINE_ABI_MAJOR, SEMLINE_ABI_MINOR, NAME,       \
                                             VERSION,           DESCRIPTION,       REGISTER_FN}; \
    return &info;                                                                              \
  }
