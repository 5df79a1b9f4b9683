// Config text through what `semline graph -c CONFIG --set ...` runs: parse_config, each --set
// override (apply_override), the [runtime.prefer] check against the loaded plugins, then
// build_graph against stories260K with the plugins of this build, and both graph printouts.
//
// Input: the TOML text, then optionally NUL-separated override assignments ("key=value"); a
// config file cannot hold a NUL, so the split costs the parser nothing.
#include <memory>
#include <string_view>

#include "core/config/config.h"
#include "core/graph/graph.h"
#include "core/host/plugin_host.h"
#include "core/model/gguf.h"
#include "fuzz_util.h"
#include "semline/error.h"

using namespace semline;

namespace {

StageRegistry& registry() {
  static StageRegistry reg;
  return reg;
}

const gguf::GgufFile& model() {
  static std::unique_ptr<gguf::GgufFile> m = gguf::GgufFile::open(fuzz::model_path("gguf/stories260K.gguf"));
  return *m;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_logs();
  PluginHost(registry()).load_all({SEMLINE_PLUGIN_DIR});
  fuzz::expect(registry().find_arch("llama") != nullptr, "the archs plugin did not load from " SEMLINE_PLUGIN_DIR);
  // The model and plugins must make a line on their own, or every input would stop early.
  build_graph(parse_config("[model]\npath = \"m.gguf\"\n", "init.toml"), model(), registry());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  try {
    Config c = parse_config(input.substr(0, nul), "fuzz.toml");
    while (nul != std::string_view::npos) {
      size_t next = input.find('\0', nul + 1);
      apply_override(c, input.substr(nul + 1, next == std::string_view::npos ? next : next - nul - 1));
      nul = next;
    }
    registry().set_preferences(c.runtime.prefer);
    registry().check_preferences();
    PipelineGraph g = build_graph(c, model(), registry());
    fuzz::expect(g.blocks.size() == static_cast<size_t>(g.hp.n_layer), "graph has another number of blocks than layers");
    (void)g.to_text();
    (void)g.to_mermaid();
  } catch (const Error&) {
  }
  return 0;
}
