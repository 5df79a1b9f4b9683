#include "app.h"

#include <unistd.h>

#include <cstdio>

#include <spdlog/spdlog.h>

namespace semline::app {

void add_line_flags(CLI::App& cmd, LineFlags& f) {
  cmd.add_option("-c,--config", f.config, "Pipeline config (TOML); see configs/");
  cmd.add_option("-m,--model", f.model, "Model: a GGUF file or a Hugging Face folder; overrides [model].path");
  cmd.add_option("--set", f.sets, "Override a config key, e.g. --set stages.attention.variant=dense");
  cmd.add_option("--plugin-path", f.plugin_paths, "Extra folder or file to load plugins from");
  cmd.add_option("--spec", f.spec, "Speculative decoding: the proposer (none, ngram, draft); speculative.proposer");
  cmd.add_option("--draft", f.draft, "Speculative decoding with this draft model (a GGUF of the same vocabulary); "
                                     "speculative.draft_model, and proposer = draft unless --spec says otherwise");
  cmd.add_option("--spec-k", f.spec_k, "Draft tokens per step at most; speculative.k")->check(CLI::Range(1, 64));
}

Config make_config(const LineFlags& f) {
  Config c = f.config.empty() ? Config{} : load_config(f.config);
  if (!f.model.empty()) {
    c.model.path = f.model;
    c.model.pos = SourcePos{"--model", 0, 0};
  }
  for (const std::string& s : f.sets) apply_override(c, s);
  if (!f.draft.empty()) {
    c.speculative.draft_model = f.draft;
    c.speculative.draft_model_pos = SourcePos{"--draft", 0, 0};
    if (f.spec.empty()) apply_override(c, "speculative.proposer=draft");
  }
  if (!f.spec.empty()) apply_override(c, "speculative.proposer=" + f.spec);
  if (f.spec_k > 0) apply_override(c, "speculative.k=" + std::to_string(f.spec_k));
  for (const std::string& p : f.plugin_paths) c.runtime.plugin_paths.push_back(p);
  if (c.model.path.empty()) throw Error((f.config.empty() ? std::string("(defaults)") : f.config) +
                                        ": no model: set [model].path or pass --model");
  return c;
}

std::unique_ptr<Plugins> load_plugins(const std::vector<std::filesystem::path>& config_paths,
                                      const std::map<std::string, std::string>& prefer) {
  auto p = std::make_unique<Plugins>();
  p->registry.set_preferences(prefer);
  p->refused = p->host.load_all(PluginHost::search_path(config_paths));
  p->registry.check_preferences();
  if (p->registry.plugins().empty())
    spdlog::warn("no plugins found; searched: config plugin_paths, SEMLINE_PLUGIN_PATH and the install folder");
  return p;
}

std::unique_ptr<LoadedLine> load_line(Config config) {
  auto l = std::make_unique<LoadedLine>();
  l->config = std::move(config);
  l->plugins = load_plugins(l->config.runtime.plugin_paths, l->config.runtime.prefer);
  l->model = open_model(l->config.model.path);
  l->graph = build_graph(l->config, *l->model, l->plugins->registry);
  l->comm = make_communicator(l->config, l->plugins->registry);
  PipelineOptions po = pipeline_options(l->config);
  po.comm = l->comm.get();
  l->pipeline = std::make_unique<Pipeline>(l->graph, *l->model, l->plugins->registry, po);
  if (l->pipeline->follower()) return l;  // it runs the leader's steps only
  l->draft = load_draft(l->config, l->plugins->registry, *l->pipeline);
  // A proposer the config names wrongly fails here, before a command prints anything.
  make_proposer(l->engine_options().speculative, *l->pipeline, l->config.runtime.max_seqs);
  return l;
}

bool followed(Pipeline& line) {
  if (!line.follower()) return false;
  line.follow();
  return true;
}

std::unique_ptr<ModelFile> open_model(const std::filesystem::path& path) {
  auto m = open_model_file(path);
  spdlog::debug("{}: {}, {} metadata keys, {} tensors", path.string(), m->format(), m->metadata().size(),
                m->tensors().size());
  return m;
}

Progress::Progress(std::string label)
    : label_(std::move(label)),
      enabled_(isatty(fileno(stderr)) && spdlog::get_level() <= spdlog::level::info) {}

Progress::~Progress() {
  if (enabled_ && last_permille_ >= 0) std::fprintf(stderr, "\n");
}

void Progress::operator()(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0) return;
  int permille = static_cast<int>(done * 1000 / total);
  if (permille == last_permille_) return;
  last_permille_ = permille;
  const int width = 40, filled = permille * width / 1000;
  std::fprintf(stderr, "\r%s [%.*s%*s] %5.1f%% (%.1f / %.1f MiB)", label_.c_str(), filled,
               "########################################", width - filled, "", permille / 10.0,
               done / 1048576.0, total / 1048576.0);
  std::fflush(stderr);
}

}  // namespace semline::app
