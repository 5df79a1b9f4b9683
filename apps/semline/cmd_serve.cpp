// semline serve: the OpenAI-compatible server over the line a config builds.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <pthread.h>
#include <spdlog/spdlog.h>

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

    Config c = make_config(o->line);
    if (o->parallel > 0) c.runtime.max_seqs = o->parallel;
    auto plugins = load_plugins(c.runtime.plugin_paths, c.runtime.prefer);
    auto model = open_model(c.model.path);
    PipelineGraph g = build_graph(c, *model, plugins->registry);
    Pipeline line(g, *model, plugins->registry, pipeline_options(c));
    serve::ServeOptions so = o->serve;
    if (so.model_id.empty()) so.model_id = model_id_of(c.model.path);
    if (auto t = model->find_string("tokenizer.chat_template")) so.model_chat_template = std::string(*t);
    serve::Server server({serve::ServeVariant{"default", &line, 1.0, c.runtime.max_seqs}}, so);
    server.bind();
    std::printf("semline serve: %s on http://%s:%d (%d sequences at once)\n", so.model_id.c_str(), so.host.c_str(),
                server.port(), c.runtime.max_seqs);
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
