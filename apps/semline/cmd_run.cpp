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
  bool no_bos = false;
  std::optional<double> temp, top_p, min_p, repeat_penalty, frequency_penalty, presence_penalty;
  std::optional<int64_t> top_k, repeat_last_n, seed;
  bool greedy = false;
};

// The usual sampling chain (llama.cpp's order), used when sampler flags are given and the config's
// chain lacks a member they set.
const std::vector<std::string> kSamplingChain = {"repetition_penalty", "frequency_penalty", "presence_penalty", "top_k",
                                                 "top_p", "min_p", "temperature", "draw"};
const std::vector<std::string> kPenalties = {"repetition_penalty", "frequency_penalty", "presence_penalty"};

// One sampler flag: the parameter it sets and the chain members that read it.
struct SamplerFlag {
  const char* flag;
  std::string param, value;
  std::vector<std::string> members;
};

std::string chain_text(const std::vector<std::string>& chain) {
  std::string s = "[";
  for (size_t i = 0; i < chain.size(); ++i) s += (i ? ", \"" : "\"") + chain[i] + "\"";
  return s + "]";
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// Sampler flags on top of the config, as llama.cpp reads them. --greedy and --temp 0 mean greedy
// (penalties given as flags still apply before it). Other flags sample: with the config's chain
// when it has every member they set, else with the sampling chain. Members of the config's chain
// that neither chain has (a content filter, say) stay, in front.
void apply_sampler_flags(const RunOpts& o, Config& c) {
  std::vector<SamplerFlag> flags;
  auto add = [&](const char* flag, const char* param, const auto& v, std::vector<std::string> members) {
    if (v) flags.push_back({flag, param, std::to_string(*v), std::move(members)});
  };
  add("--temp", "temperature", o.temp, {"temperature"});
  add("--top-k", "top_k", o.top_k, {"top_k"});
  add("--top-p", "top_p", o.top_p, {"top_p"});
  add("--min-p", "min_p", o.min_p, {"min_p"});
  add("--seed", "seed", o.seed, {"draw"});
  add("--repeat-penalty", "repeat_penalty", o.repeat_penalty, {"repetition_penalty"});
  add("--frequency-penalty", "frequency_penalty", o.frequency_penalty, {"frequency_penalty"});
  add("--presence-penalty", "presence_penalty", o.presence_penalty, {"presence_penalty"});
  add("--repeat-last-n", "repeat_last_n", o.repeat_last_n, kPenalties);
  const bool greedy = o.greedy || (o.temp && *o.temp == 0);
  if (flags.empty() && !greedy) return;

  StageChoice& sampler = c.stages["sampler"];
  std::vector<std::string> configured;
  if (auto it = sampler.params.find("chain"); it != sampler.params.end())
    if (const auto* l = std::get_if<std::vector<std::string>>(&it->second.value)) configured = *l;
  std::vector<std::string> chain;  // the config's own filters first
  for (const std::string& m : configured)
    if (m != "greedy" && m != "draw" && !contains(kSamplingChain, m)) chain.push_back(m);
  auto sets_member_of = [](const SamplerFlag& f, const std::vector<std::string>& members) {
    return std::any_of(f.members.begin(), f.members.end(), [&](const std::string& m) { return contains(members, m); });
  };

  if (greedy) {
    for (const std::string& p : kPenalties)
      for (const SamplerFlag& f : flags)
        if (f.members == std::vector<std::string>{p}) chain.push_back(p);
    chain.push_back("greedy");
    std::erase_if(flags, [&](const SamplerFlag& f) {
      if (sets_member_of(f, chain)) return false;
      if (f.param != "temperature")
        spdlog::warn("{}: ignored, {} means greedy", f.flag, o.greedy ? "--greedy" : "--temp 0");
      return true;
    });
  } else {
    const bool covered = !configured.empty() && std::all_of(flags.begin(), flags.end(), [&](const SamplerFlag& f) {
      return sets_member_of(f, configured);
    });
    if (covered) {
      chain = configured;
    } else {
      chain.insert(chain.end(), kSamplingChain.begin(), kSamplingChain.end());
      if (!configured.empty())
        spdlog::info("{}: the config's sampler chain {} lacks what the flags set; sampling with {}",
                     c.file.empty() ? "config" : c.file.string(), chain_text(configured), chain_text(chain));
    }
  }
  apply_override(c, "stages.sampler.chain=" + chain_text(chain));
  for (const SamplerFlag& f : flags) apply_override(c, "stages.sampler." + f.param + "=" + f.value);
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
