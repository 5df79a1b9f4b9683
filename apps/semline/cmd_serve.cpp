// semline serve: the OpenAI-compatible server over the line a config builds.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "ab_bench.h"
#include "app.h"
#include "core/engine/pipeline.h"
#include "core/graph/graph.h"
#include "core/serve/server.h"

namespace semline::app {

namespace {

struct ServeOpts {
  LineFlags line;
  serve::ServeOptions serve;
  int parallel = 0;
};

// The name clients give the model: the file's (or Hugging Face folder's) stem.
std::string model_id_of(const std::filesystem::path& p) {
  std::filesystem::path q = p;
  if (q.filename() == "config.json") q = q.parent_path();
  if (q.has_filename() == false) q = q.parent_path();
  return q.stem().string();
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve the line over HTTP with the OpenAI API (completions, chat, streaming)");
  auto o = std::make_shared<ServeOpts>();
  add_line_flags(*cmd, o->line);
  cmd->add_option("--host", o->serve.host, "Address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", o->serve.port, "Port (default 8080; 0 = any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", o->serve.api_key, "Require 'Authorization: Bearer KEY' on /v1 and the tokenizer routes");
  cmd->add_option("--chat-template", o->serve.chat_template,
                  "Chat template: plain, chatml, llama-2, llama-3, mistral, phi-3, gemma, zephyr (default: the model's)");
  cmd->add_option("--model-id", o->serve.model_id, "The model's name for clients (default: the model file's stem)");
  cmd->add_option("--parallel", o->parallel, "Sequences generated at once (runtime.max_seqs)")->check(CLI::Range(1, 4096));
  cmd->add_option("--max-queue", o->serve.max_queue, "Requests that may wait beyond the running ones before 503")
      ->check(CLI::Range(0, 100000));
  cmd->callback([o] {
    // SIGINT and SIGTERM are taken by one thread (blocked everywhere else, before any thread
    // starts), which stops the server: it stops accepting, cancels what runs, and exits 0.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    // The variants: [[serve.variants]] of the config, or a --set grid (KEY=a,b), or the config alone.
    LineFlags flags = o->line;
    std::vector<std::string> grid;
    std::erase_if(flags.sets, [&](const std::string& s) { return is_grid_assignment(s) && (grid.push_back(s), true); });
    Config c = make_config(flags);
    if (o->parallel > 0) c.runtime.max_seqs = o->parallel;
    std::vector<std::pair<std::string, Config>> configs;
    std::vector<double> shares;
    if (!grid.empty() && !c.serve_variants.empty())
      throw Error("--set " + grid.front() + ": the config names its variants in [[serve.variants]]; give one or the other");
    if (!grid.empty()) {
      configs = grid_configs(c, grid);
    } else if (!c.serve_variants.empty()) {
      for (const ServeVariantConfig& sv : c.serve_variants) {
        Config vc = sv.config.empty() ? c : load_config(sv.config);
        if (!sv.config.empty() && !o->line.model.empty()) vc.model.path = o->line.model;
        if (o->parallel > 0) vc.runtime.max_seqs = o->parallel;
        for (const std::string& s : sv.sets) apply_override(vc, s);
        vc.serve_variants.clear();
        configs.emplace_back(sv.name, std::move(vc));
        shares.push_back(sv.share);
      }
    } else {
      configs.emplace_back("default", c);
    }
    for (const auto& [name, vc] : configs)
      if (std::filesystem::path(vc.model.path).lexically_normal() != std::filesystem::path(c.model.path).lexically_normal())
        throw Error("variant " + name + " serves " + vc.model.path.string() + ", not " + c.model.path.string() +
                    ": the variants of a live A/B are of one model");
    std::vector<std::filesystem::path> plugin_paths;
    std::map<std::string, std::string> prefer;
    for (const auto& [name, vc] : configs) {
      plugin_paths.insert(plugin_paths.end(), vc.runtime.plugin_paths.begin(), vc.runtime.plugin_paths.end());
      prefer.insert(vc.runtime.prefer.begin(), vc.runtime.prefer.end());
    }
    auto plugins = load_plugins(plugin_paths, prefer);
    drop_undeclared_params(configs, grid, plugins->registry);
    auto model = open_model(c.model.path);
    // A line split across ranks ([parallel]): rank 0 serves, the others follow its steps.
    const auto comm = make_communicator(c, plugins->registry);
    if (comm && configs.size() > 1)
      throw Error("[parallel] splits one line across ranks; serve the variants of an A/B ([[serve.variants]], "
                  "--set a,b) in one process each");
    // One line per variant over the one model file (mapped once: its weights' pages are shared).
    std::vector<PipelineGraph> graphs;
    std::vector<std::unique_ptr<Pipeline>> lines;
    std::vector<std::unique_ptr<DraftLine>> drafts;
    std::vector<serve::ServeVariant> variants;
    graphs.reserve(configs.size());
    for (size_t i = 0; i < configs.size(); ++i) {
      const Config& vc = configs[i].second;
      graphs.push_back(build_graph(vc, *model, plugins->registry));
      PipelineOptions po = pipeline_options(vc);
      po.comm = comm.get();
      lines.push_back(std::make_unique<Pipeline>(graphs.back(), *model, plugins->registry, po));
      if (followed(*lines.back())) return;
      drafts.push_back(load_draft(vc, plugins->registry, *lines.back()));
      variants.push_back(serve::ServeVariant{configs[i].first, lines.back().get(), i < shares.size() ? shares[i] : 1.0,
                                             engine_options(vc, drafts.back() ? drafts.back()->pipeline.get() : nullptr)});
    }
    serve::ServeOptions so = o->serve;
    if (so.model_id.empty()) so.model_id = model_id_of(c.model.path);
    if (auto t = model->find_string("tokenizer.chat_template")) so.model_chat_template = std::string(*t);
    serve::Server server(variants, so);
    server.bind();
    std::string names;
    for (const auto& v : variants) names += (names.empty() ? "" : ", ") + v.name;
    std::printf("semline serve: %s on http://%s:%d (%d sequences at once; variants: %s)\n", so.model_id.c_str(),
                so.host.c_str(), server.port(), c.runtime.max_seqs, names.c_str());
    std::fflush(stdout);
    std::thread waiter([&] {
      int sig = 0;
      sigwait(&signals, &sig);
      spdlog::info("signal {}: stopping", sig);
      server.stop();
    });
    server.run();
    pthread_kill(waiter.native_handle(), SIGTERM);  // if run() ended on its own, the waiter still waits
    waiter.join();
    std::printf("semline serve: stopped\n");
  });
}

}  // namespace semline::app
