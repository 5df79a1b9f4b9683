// semline: the command line of the semantic production line.
#include <cstdio>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app.h"

int main(int argc, char** argv) {
  // Logs and errors go to stderr, so stdout carries only what a command produces.
  auto logger = spdlog::stderr_color_mt("semline");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);

  CLI::App app{"semline — a plugin-based LLM inference line: text -> tokens -> blocks -> logits -> text"};
  app.require_subcommand(1);
  int verbose = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbose, "More logging (-v debug, -vv trace)");
  app.add_flag("-q,--quiet", quiet, "Only errors");
  app.parse_complete_callback([&] {
    if (quiet) spdlog::set_level(spdlog::level::err);
    else if (verbose >= 2) spdlog::set_level(spdlog::level::trace);
    else if (verbose == 1) spdlog::set_level(spdlog::level::debug);
  });

  using namespace semline::app;
  add_run_command(app);
  add_bench_command(app);
  add_serve_command(app);
  add_chat_command(app);
  add_plugins_command(app);
  add_inspect_command(app);
  add_graph_command(app);
  add_tokenize_command(app);
  add_convert_command(app);
  add_quantize_command(app);
  add_synth_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
