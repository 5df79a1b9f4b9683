// Loads plugin libraries (libsemline-<name>.so) into a StageRegistry.
//
// A library is opened with RTLD_LOCAL | RTLD_NOW (its symbols stay private, unresolved symbols
// fail at load rather than at first call), its one entry symbol is called with the host's ABI
// major, and only the descriptor's ABI fields are read before the version is checked
// (abi_refusal). Every refusal is one semline::Error naming the file; the host stays usable and
// can load others. A library's static initialisers run inside the dynamic loader, where no
// exception can pass: one that throws stops the process with one line naming the file and exit
// status 1. Libraries are never unloaded (see keep_loaded in plugin_host.cpp).
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/host/registry.h"

namespace semline {

// The ABI rule of <semline/plugin.h>: why a plugin built against SDK ABI plugin_major.plugin_minor
// cannot load into a host speaking host_major.host_minor ("" when it can). Another major is
// refused; a newer minor too (the plugin may read fields the host does not write); an older minor
// loads.
std::string abi_refusal(uint32_t plugin_major, uint32_t plugin_minor, uint32_t host_major, uint32_t host_minor);

class PluginHost {
 public:
  explicit PluginHost(StageRegistry& reg) : reg_(reg) {}

  // Where plugins are looked for, in order: when the executable runs from <prefix>/bin, the
  // install folder <prefix>/lib/semline/plugins and the build tree's <build>/plugins, whichever
  // exist (the built-in plugins, first so that nothing loaded later displaces them); then the
  // config's plugin_paths and SEMLINE_PLUGIN_PATH (':'-separated).
  static std::vector<std::filesystem::path> search_path(const std::vector<std::filesystem::path>& config_paths);

  // Loads one plugin file; loading a file already loaded (same canonical path) does nothing.
  void load(const std::filesystem::path& file);

  // Loads every libsemline-*.so in the given folders (in name order) and every file given
  // directly. Each refusal, and each path that does not exist, is logged as an error and its
  // message returned; the rest still load. A folder or file named twice is visited once.
  std::vector<std::string> load_all(const std::vector<std::filesystem::path>& paths);

 private:
  StageRegistry& reg_;
  std::set<std::filesystem::path> loaded_;  // canonical paths
};

}  // namespace semline
