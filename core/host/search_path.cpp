#include <cstdlib>
#include <string_view>

#include "core/host/plugin_host.h"

namespace semline {
namespace fs = std::filesystem;
namespace {

// The folder an executable in <prefix>/<bin dir> runs from, or empty when it runs elsewhere
// (a test binary deep in the build tree, say), in which case no default folder applies.
fs::path executable_prefix() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  fs::path dir = exe.parent_path();
  const fs::path bin(SEMLINE_BIN_INSTALL_DIR);
  if (bin.is_absolute()) return {};
  std::vector<fs::path> parts(bin.begin(), bin.end());
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (dir.filename() != *it) return {};
    dir = dir.parent_path();
  }
  return dir;
}

}  // namespace

std::vector<fs::path> PluginHost::search_path(const std::vector<fs::path>& config_paths) {
  std::vector<fs::path> out;
  // The plugins shipped with this semline first: a plugin of the user's can then never knock a
  // built-in out by loading before it (a clash leaves the built-in's entry in place unless
  // [runtime.prefer] says otherwise, and a second plugin of a built-in's name is refused).
  if (const fs::path prefix = executable_prefix(); !prefix.empty()) {
    std::error_code ec;
    // Installed: <prefix>/bin/semline and <prefix>/lib/semline/plugins. Build tree:
    // build/bin/semline and build/plugins.
    for (const fs::path& dir : {prefix / SEMLINE_PLUGIN_INSTALL_DIR, prefix / "plugins"})
      if (fs::is_directory(dir, ec)) out.push_back(dir);
  }
  out.insert(out.end(), config_paths.begin(), config_paths.end());
  if (const char* env = std::getenv("SEMLINE_PLUGIN_PATH")) {
    std::string_view rest(env);
    while (!rest.empty()) {
      const size_t colon = rest.find(':');
      const std::string_view item = rest.substr(0, colon);
      if (!item.empty()) out.emplace_back(item);
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  }
  return out;
}

}  // namespace semline
