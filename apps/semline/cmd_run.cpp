// semline run: generate text from a prompt, streaming, with a closing line of speeds.
#include <cstdio>
#include <optional>

#include <spdlog/spdlog.h>

#include "app.h"
#include "core/engine/generator.h"
#include "core/engine/pipeline.h"
#include "core/graph/graph.h"

namespace semline::app {

namespace {

struct RunOpts {
  LineFlags line;
  std::string prompt;
  int n = 128;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool no_bos = false;
  std::optional<double> temp, top_p, min_p, repeat_penalty, frequency_penalty, presence_penalty;
  std::optional<int64_t> top_k, repeat_last_n, seed;
  bool greedy = false;
};

// The usual sampling chain, used when sampler flags are given and the config names no chain.
const char* kSamplingChain = R"(["repetition_penalty", "frequency_penalty", "presence_penalty", "top_k", "top_p", "min_p", "temperature", "draw"])";

void apply_sampler_flags(const RunOpts& o, Config& c) {
  std::vector<std::string> sets;
  auto num = [&](const char* key, const auto& v) {
    if (v) sets.push_back(std::string("stages.sampler.") + key + "=" + std::to_string(*v));
  };
  num("temperature", o.temp);
  num("top_p", o.top_p);
  num("min_p", o.min_p);
  num("repeat_penalty", o.repeat_penalty);
  num("frequency_penalty", o.frequency_penalty);
  num("presence_penalty", o.presence_penalty);
  num("top_k", o.top_k);
  num("repeat_last_n", o.repeat_last_n);
  num("seed", o.seed);
  auto& sampler = c.stages["sampler"];
  const bool has_chain = sampler.params.count("chain") > 0;
  if (o.greedy) {
    apply_override(c, "stages.sampler.chain=[\"greedy\"]");
    for (const std::string& s : sets)
      spdlog::warn("--greedy: ignoring {}", s.substr(std::string("stages.sampler.").size()));
    return;
  }
  if (!sets.empty() && !has_chain) apply_override(c, std::string("stages.sampler.chain=") + kSamplingChain);
  for (const std::string& s : sets) apply_override(c, s);
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt");
  auto o = std::make_shared<RunOpts>();
  add_line_flags(*cmd, o->line);
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->required();
  cmd->add_option("-n,--n-predict", o->n, "Most tokens to generate")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--stop", o->stop, "Stop when the text contains this string (repeatable)");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past the end-of-sequence token");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token to the prompt");
  cmd->add_flag("--greedy", o->greedy, "Always take the most likely token (chain = [greedy])");
  cmd->add_option("--temp", o->temp, "Temperature");
  cmd->add_option("--top-k", o->top_k, "Top-k (0 = off)");
  cmd->add_option("--top-p", o->top_p, "Top-p (nucleus)");
  cmd->add_option("--min-p", o->min_p, "Min-p, relative to the most likely token");
  cmd->add_option("--repeat-penalty", o->repeat_penalty, "Repetition penalty (1 = off)");
  cmd->add_option("--repeat-last-n", o->repeat_last_n, "Window of the penalties, in tokens");
  cmd->add_option("--frequency-penalty", o->frequency_penalty, "Frequency penalty");
  cmd->add_option("--presence-penalty", o->presence_penalty, "Presence penalty");
  cmd->add_option("-s,--seed", o->seed, "Seed of the random draw");
  cmd->callback([o] {
    Config c = make_config(o->line);
    apply_sampler_flags(*o, c);
    auto plugins = load_plugins(c.runtime.plugin_paths, c.runtime.prefer);
    auto model = open_model(c.model.path);
    PipelineGraph g = build_graph(c, *model, plugins->registry);
    Pipeline p(g, *model, plugins->registry, pipeline_options(c));
    std::vector<int32_t> prompt = p.tokenizer().encode(o->prompt, !o->no_bos);
    GenerateOptions go;
    go.max_tokens = o->n;
    go.stop = o->stop;
    go.stop_at_eos = !o->ignore_eos;
    std::fputs(o->prompt.c_str(), stdout);
    std::fflush(stdout);
    GenerateResult r = generate(p, prompt, go, [](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    });
    std::fputs("\n", stdout);
    std::fflush(stdout);
    std::fprintf(stderr,
                 "prompt %d tokens, %.1f t/s | generation %zu tokens, %.1f t/s | time to first token %.2f ms | "
                 "stop: %s\n",
                 r.n_prompt, r.prompt_tps(), r.tokens.size(), r.gen_tps(), r.ttft_seconds * 1e3,
                 r.stop_reason.c_str());
  });
}

}  // namespace semline::app
