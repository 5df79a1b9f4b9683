// What every command shares: logging, the plugin host and registry, the config and the model.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/config/config.h"
#include "core/engine/communicator.h"
#include "core/engine/draft_proposer.h"
#include "core/engine/engine.h"
#include "core/engine/pipeline.h"
#include "core/graph/graph.h"
#include "core/host/plugin_host.h"
#include "core/host/registry.h"
#include "core/model/model_file.h"

namespace semline::app {

// Flags every command that builds a line accepts.
struct LineFlags {
  std::string config;               // --config
  std::string model;                // --model (overrides [model].path)
  std::vector<std::string> sets;    // --set key=value
  std::string spec;                 // --spec: speculative.proposer
  int spec_k = 0;                   // --spec-k: speculative.k
  std::string draft;                // --draft: speculative.draft_model (and proposer = draft)
  std::vector<std::string> plugin_paths;  // --plugin-path
};
void add_line_flags(CLI::App& cmd, LineFlags& f);

// The registry with every plugin found on the search path loaded (config paths first).
struct Plugins {
  StageRegistry registry;
  PluginHost host{registry};
  std::vector<std::string> refused;  // one line per plugin the host refused
};
std::unique_ptr<Plugins> load_plugins(const std::vector<std::filesystem::path>& config_paths,
                                      const std::map<std::string, std::string>& prefer = {});

// The config from --config (or defaults), with --model and --set applied.
Config make_config(const LineFlags& f);

// The model a path names: a GGUF file, or a Hugging Face folder (or its config.json).
std::unique_ptr<ModelFile> open_model(const std::filesystem::path& path);

// A config made into a line: its plugins, model, graph and pipeline, alive together.
struct LoadedLine {
  Config config;
  std::unique_ptr<Plugins> plugins;
  std::unique_ptr<ModelFile> model;
  std::unique_ptr<Communicator> comm;  // [parallel] tensor > 1; outlives the pipeline
  PipelineGraph graph;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<DraftLine> draft;  // speculative.proposer = "draft"
  EngineOptions engine_options() const { return semline::engine_options(config, draft ? draft->pipeline.get() : nullptr); }
};
std::unique_ptr<LoadedLine> load_line(Config config);
// A line split across ranks: on a following rank, runs the leader's steps until its line ends and
// returns true (the command then has nothing more to do on this rank); false on the leader or an
// unsplit line.
bool followed(Pipeline& line);

// A progress bar on stderr for long work (convert, quantize, synth, load, bench); silent when
// stderr is not a terminal or logging is quiet.
class Progress {
 public:
  explicit Progress(std::string label);
  ~Progress();
  void operator()(uint64_t done, uint64_t total);

 private:
  std::string label_;
  bool enabled_;
  int last_permille_ = -1;
};

void add_plugins_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_graph_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_bench_serve_command(CLI::App& bench);  // semline bench serve
void add_bench_comm_command(CLI::App& bench);   // semline bench comm

}  // namespace semline::app
