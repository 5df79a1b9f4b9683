// The plugin search path: the built-in folders derived from where the executable runs, then
// config folders, then SEMLINE_PLUGIN_PATH.
#include <cstdlib>
#include <optional>

#include "core/host/plugin_host.h"
#include "host/fixtures.h"

using semline::PluginHost;
namespace fs = std::filesystem;

namespace {

// Sets SEMLINE_PLUGIN_PATH (or removes it) for the life of the object.
class PluginPathEnv {
 public:
  explicit PluginPathEnv(const char* value) {
    if (const char* old = std::getenv("SEMLINE_PLUGIN_PATH")) previous_ = old;
    if (value)
      ::setenv("SEMLINE_PLUGIN_PATH", value, 1);
    else
      ::unsetenv("SEMLINE_PLUGIN_PATH");
  }
  ~PluginPathEnv() {
    if (previous_)
      ::setenv("SEMLINE_PLUGIN_PATH", previous_->c_str(), 1);
    else
      ::unsetenv("SEMLINE_PLUGIN_PATH");
  }

 private:
  std::optional<std::string> previous_;
};

}  // namespace

TEST_CASE("the search path puts config folders after the built-in ones, then SEMLINE_PLUGIN_PATH in order") {
  PluginPathEnv env("/opt/a::/opt/b:");
  const auto path = PluginHost::search_path({"/etc/semline/plugins"});
  REQUIRE(path.size() >= 3);
  // Whatever comes first are the executable's default folders, listed only when they exist.
  const size_t defaults = path.size() - 3;
  for (size_t i = 0; i < defaults; ++i) CHECK(fs::is_directory(path[i]));
  CHECK(path[defaults] == fs::path("/etc/semline/plugins"));
  CHECK(path[defaults + 1] == fs::path("/opt/a"));
  CHECK(path[defaults + 2] == fs::path("/opt/b"));
}

TEST_CASE("without SEMLINE_PLUGIN_PATH only config folders and existing defaults are searched") {
  PluginPathEnv env(nullptr);
  const auto path = PluginHost::search_path({});
  for (const auto& dir : path) CHECK(fs::is_directory(dir));
  // This test runs from the build tree's tests folder, not from a bin folder: no defaults apply.
  CHECK(path.empty());
}

TEST_CASE("the search path feeds load_all") {
  PluginPathEnv env(SEMLINE_TEST_PLUGIN_DIR "/libsemline-test-good.so");
  semline::StageRegistry reg;
  PluginHost host(reg);
  CHECK(host.load_all(PluginHost::search_path({})).empty());
  REQUIRE(reg.plugins().size() == 1);
  CHECK(reg.plugins()[0].name == "test-good");
}
