// semline plugins: every loaded plugin and what it registers, readable without running anything.
#include <cstdio>

#include "app.h"
#include "core/util/text.h"

namespace semline::app {

namespace {

void print_params(const std::vector<ParamSpec>& params) {
  for (const ParamSpec& p : params) {
    std::string range;
    if (p.min || p.max)
      range = " [" + (p.min ? param_value_string(*p.min) : std::string("-inf")) + ", " +
              (p.max ? param_value_string(*p.max) : std::string("inf")) + "]";
    if (!p.choices.empty()) range += " {" + join(p.choices) + "}";
    std::printf("        %-18s %-11s = %-10s%s  %s\n", p.name.c_str(), param_type_name(p.type),
                param_value_string(p.default_value).c_str(), range.c_str(), p.doc.c_str());
  }
}

std::string caps_string(const Capabilities& c) {
  std::string s = c.exact ? "exact" : "approximation";
  if (!c.weight_dtypes.empty()) {
    std::vector<std::string> d;
    for (DType t : c.weight_dtypes) d.push_back(dtype_name(t));
    s += ", weights " + join(d, "/");
  }
  if (c.max_head_dim) s += ", head_dim <= " + std::to_string(c.max_head_dim);
  return s;
}

void print_plugins(const Plugins& p) {
  const StageRegistry& r = p.registry;
  for (const PluginRecord& rec : r.plugins()) {
    std::printf("%s %s  (ABI %u.%u)  %s\n    file: %s\n", rec.name.c_str(), rec.version.c_str(), rec.abi_major,
                rec.abi_minor, rec.description.c_str(), rec.file.string().c_str());
    for (const RegisteredBackend* b : r.backends()) {
      if (b->plugin != rec.name) continue;
      std::printf("    backend %-24s %s\n", b->entry.name.c_str(), b->entry.description.c_str());
      print_params(b->entry.params);
    }
    for (const RegisteredArch* a : r.archs()) {
      if (a->plugin != rec.name) continue;
      std::printf("    arch    %-24s %s\n", a->entry.name.c_str(), a->entry.description.c_str());
    }
    for (const RegisteredProposer* e : r.proposers()) {
      if (e->plugin != rec.name) continue;
      std::printf("    proposer %-23s %s\n", e->entry.name.c_str(), e->entry.description.c_str());
      print_params(e->entry.params);
    }
    for (const RegisteredComm* e : r.comms()) {
      if (e->plugin != rec.name) continue;
      std::printf("    comm    %-24s %s\n", e->entry.name.c_str(), e->entry.description.c_str());
      print_params(e->entry.params);
    }
    for (const RegisteredStage* s : r.stages()) {
      if (s->plugin != rec.name) continue;
      std::string key = std::string(stage_kind_name(s->entry.kind)) + " " + s->entry.variant + "@" + s->entry.backend;
      std::printf("    %-32s %s\n", key.c_str(), s->entry.description.c_str());
      std::printf("        rank %d, %s\n", s->entry.rank, caps_string(s->entry.caps).c_str());
      print_params(s->entry.params);
    }
  }
  for (const std::string& e : p.refused) std::printf("refused: %s\n", e.c_str());
}

}  // namespace

void add_plugins_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plugins", "List every loaded plugin and its entries, with parameters");
  auto paths = std::make_shared<std::vector<std::string>>();
  auto config = std::make_shared<std::string>();
  cmd->add_option("-c,--config", *config, "Config whose runtime.plugin_paths and runtime.prefer to use");
  cmd->add_option("--plugin-path", *paths, "Extra folder or file to load plugins from");
  cmd->callback([paths, config] {
    std::vector<std::filesystem::path> search(paths->begin(), paths->end());
    std::map<std::string, std::string> prefer;
    if (!config->empty()) {
      Config c = load_config(*config);
      search.insert(search.begin(), c.runtime.plugin_paths.begin(), c.runtime.plugin_paths.end());
      prefer = c.runtime.prefer;
    }
    print_plugins(*load_plugins(search, prefer));
  });
}

}  // namespace semline::app
