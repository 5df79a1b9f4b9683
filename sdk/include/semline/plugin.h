// semline SDK — the plugin entry point. The one header a plugin includes.
//
// A plugin is a shared library that exports exactly one symbol, semline_plugin_entry. The host
// calls it with its own ABI major; the returned descriptor starts with the plugin's ABI major and
// minor, which the host compares before reading anything else.
//
// The ABI rules. The ABI is the layout of every type in these headers and every virtual table of
// their classes, as the plugin and the host each compiled them.
//   - The major changes with any change a plugin built against the old headers would misread:
//     a virtual function added, removed, reordered or changed (even one with a default body); a
//     field added, removed, reordered or retyped in a type that crosses the boundary by value or
//     inside another type or container (StageEntry, ParamSpec, Candidate, Batch, HParams, ...);
//     an enumerator renumbered; a function's meaning changed. A host refuses every plugin of
//     another major.
//   - The minor changes only when a field is appended to the end of a type the other side reaches
//     through a pointer or reference alone and never copies or puts in an array (this descriptor;
//     StageContext, which the host makes and plugins read). The field's comment names the minor
//     that added it. The host reads an appended field of a plugin's object only when the plugin's
//     minor has it. A plugin built against a newer minor than the host's may read fields the host
//     never wrote, so the host refuses it; an older minor is accepted.
//   Anything else (a new free inline function, a new enumerator at the end that old plugins never
//   meet, documentation) changes neither.
// Plugins and host must share a C++ standard library (libstdc++, the same _GLIBCXX_USE_CXX11_ABI),
// since entries carry std::string, std::vector and std::function.
//
//   #include <semline/plugin.h>
//   static void register_all(semline::Registry& r) { r.add_stage({...}); }
//   SEMLINE_PLUGIN("my-plugin", "1.0.0", "What it adds, in one line", register_all)
#pragma once

#include <cstddef>
#include <cstdint>

#include "semline/registry.h"

// 4.0: Tokenizer::encode's parse_special and is_eog, ArchTemplate's metadata keys, ModelView's listings,
// HParams' rope_freq_scale and parallel_residual; see
// docs/plugin-authoring.md, "ABI history".
#define SEMLINE_ABI_MAJOR 10u
#define SEMLINE_ABI_MINOR 0u

extern "C" {

struct semline_plugin_info {
  // -- ABI 10.0 (unchanged since 2.0) --
  uint32_t abi_major;        // must stay the first field
  uint32_t abi_minor;
  const char* name;          // unique among plugins, e.g. "cpu"
  const char* version;       // the plugin's own version
  const char* description;   // one line
  void (*register_all)(semline::Registry& registry);  // may throw; the host discards the plugin
};

}  // extern "C"

static_assert(offsetof(semline_plugin_info, abi_major) == 0, "abi_major must come first");
static_assert(sizeof(semline_plugin_info) == 8 + 4 * sizeof(void*), "ABI 10.0 descriptor layout");

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
