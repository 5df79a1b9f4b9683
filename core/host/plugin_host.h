// Loads plugin libraries (libsemline-<name>.so) into a StageRegistry.
//
// A library is opened with RTLD_LOCAL | RTLD_NOW (its symbols stay private, unresolved symbols
// fail at load rather than at first call), its one entry symbol is called with the host's ABI
// major, and only the descriptor's ABI fields are read before the major is compared. Every
// refusal is one semline::Error naming the file; the host stays usable and can load others.
// Libraries are never unloaded (see keep_loaded in plugin_host.cpp).
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/host/registry.h"

namespace semline {

class PluginHost {
 public:
  explicit PluginHost(StageRegistry& reg) : reg_(reg) {}

  // Where plugins are looked for, in order: the config's plugin_paths, SEMLINE_PLUGIN_PATH
  // (':'-separated), then, when the executable runs from <prefix>/bin, the install folder
  // <prefix>/lib/semline/plugins and the build tree's <build>/plugins, whichever exist.
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
