// semline graph: the line a config builds for a model, as text or Mermaid.
#include <cstdio>

#include "app.h"
#include "core/graph/graph.h"

namespace semline::app {

void add_graph_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("graph", "Build and validate the pipeline graph; print it as text or Mermaid");
  auto flags = std::make_shared<LineFlags>();
  auto format = std::make_shared<std::string>("text");
  add_line_flags(*cmd, *flags);
  cmd->add_option("-f,--format", *format, "text | mermaid")->check(CLI::IsMember({"text", "mermaid"}));
  cmd->callback([flags, format] {
    Config c = make_config(*flags);
    auto plugins = load_plugins(c.runtime.plugin_paths, c.runtime.prefer);
    auto model = open_model(c.model.path);
    PipelineGraph g = build_graph(c, *model, plugins->registry);
    std::fputs((*format == "mermaid" ? g.to_mermaid() : g.to_text()).c_str(), stdout);
  });
}

}  // namespace semline::app
