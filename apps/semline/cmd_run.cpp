// semline run: generate text from a prompt, streaming, with a closing line of speeds.
#include <algorithm>
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
  bool no_bos = false, special = false;
  std::optional<double> temp, top_p, min_p, repeat_penalty, frequency_penalty, presence_penalty;
  std::optional<int64_t> top_k, repeat_last_n, seed;
  bool greedy = false;
};

std::string chain_text(const std::vector<std::string>& chain) {
  std::string s = "[";
  for (size_t i = 0; i < chain.size(); ++i) s += (i ? ", \"" : "\"") + chain[i] + "\"";
  return s + "]";
}

// The sampler flags as a request's sampling parameters; the engine's rules choose the chain
// (core/engine/sampling.h). What greedy makes of the flags, and a chain the flags change, are said.
SamplingParams sampling_of(const RunOpts& o) {
  SamplingParams p;
  p.greedy = o.greedy;
  p.temperature = o.temp;
  p.top_k = o.top_k;
  p.top_p = o.top_p;
  p.min_p = o.min_p;
  p.repeat_penalty = o.repeat_penalty;
  p.frequency_penalty = o.frequency_penalty;
  p.presence_penalty = o.presence_penalty;
  p.repeat_last_n = o.repeat_last_n;
  p.seed = o.seed;
  if (o.greedy || (o.temp && *o.temp == 0)) {
    const char* why = o.greedy ? "--greedy" : "--temp 0";
    auto ignore = [&](const char* flag, bool given) {
      if (given) spdlog::warn("{}: ignored, {} means greedy", flag, why);
    };
    ignore("--temp", o.greedy && o.temp.has_value());
    ignore("--top-k", o.top_k.has_value());
    ignore("--top-p", o.top_p.has_value());
    ignore("--min-p", o.min_p.has_value());
    ignore("--seed", o.seed.has_value());
  }
  return p;
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
  cmd->add_flag("--special", o->special, "Read control tokens written in the prompt (e.g. <|im_start|>) as their ids");
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
    const auto line = load_line(make_config(o->line));
    Pipeline& p = *line->pipeline;
    if (followed(p)) return;
    const PipelineGraph& g = p.graph();
    std::vector<int32_t> prompt = p.tokenizer().encode(o->prompt, !o->no_bos, o->special);
    const SamplingParams sampling = sampling_of(*o);
    {
      const SamplerFactory chains(p.graph(), p.registry(), p.tokenizer());
      std::vector<std::string> configured;
      for (const GraphNode& n : g.sampler_chain) configured.push_back(n.impl->entry.variant);
      const std::vector<std::string> chain = chains.chain_for(sampling);
      if (chain != configured && chain.back() == "draw")
        spdlog::info("{}: the config's sampler chain {} lacks what the flags set; sampling with {}",
                     o->line.config.empty() ? "config" : o->line.config, chain_text(configured), chain_text(chain));
    }
    GenerateOptions go;
    go.sampling = sampling;
    go.max_tokens = o->n;
    go.stop = o->stop;
    go.stop_at_eos = !o->ignore_eos;
    go.speculative = line->engine_options().speculative;
    std::fputs(o->prompt.c_str(), stdout);
    std::fflush(stdout);
    GenerateResult r = generate(p, prompt, go, [](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    });
    std::fputs("\n", stdout);
    std::fflush(stdout);
    std::string spec;
    if (go.speculative.proposer != "none")
      // Tokens a verifying step yields: the accepted drafts and the model's own token after them.
      spec = fmt::format(" | {}: {} of {} drafts accepted ({:.0f}%), {:.2f} tokens a step", go.speculative.proposer,
                         r.accepted_tokens, r.draft_tokens, r.draft_tokens ? 100.0 * r.accepted_tokens / r.draft_tokens : 0.0,
                         r.draft_steps ? 1.0 + static_cast<double>(r.accepted_tokens) / r.draft_steps : 1.0);
    std::fprintf(stderr,
                 "prompt %d tokens, %.1f t/s | generation %zu tokens, %.1f t/s | time to first token %.2f ms | "
                 "stop: %s%s\n",
                 r.n_prompt, r.prompt_tps(), r.tokens.size(), r.gen_tps(), r.ttft_seconds * 1e3,
                 r.stop_reason.c_str(), spec.c_str());
  });
}

}  // namespace semline::app
