#include "ab_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/engine/generator.h"
#include "core/engine/pipeline.h"
#include "core/engine/quality.h"
#include "core/graph/graph.h"
#include "stats.h"

namespace semline::app {

namespace {

using clock_type = std::chrono::steady_clock;

struct Variant {
  std::string name;
  Config config;
  std::unique_ptr<ModelFile> model;
  PipelineGraph graph;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<DraftLine> draft;  // speculative.proposer = "draft"
  // measurements
  std::vector<double> pp_tps, tg_tps, ttft_ms, itl_ms;
  int64_t draft_steps = 0, draft_tokens = 0, accepted_tokens = 0;  // speculative decoding, over the repetitions
  double peak_mib = 0;
  double flops_per_token = 0, bytes_per_token = 0;  // decode, from the stages' own counts
  std::optional<double> joules_per_token;
  std::optional<QualityResult> quality;
};

// Peak resident memory since the last reset (Linux: VmHWM, reset through clear_refs).
void reset_peak_memory() {
  std::ofstream f("/proc/self/clear_refs");
  if (f) f << "5";
}
double peak_memory_mib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

// Package energy from RAPL, in joules; nullopt where the machine does not expose it.
std::optional<double> rapl_joules() {
  double total = 0;
  bool any = false;
  for (int i = 0; i < 16; ++i) {
    std::ifstream f("/sys/class/powercap/intel-rapl:" + std::to_string(i) + "/energy_uj");
    uint64_t uj;
    if (f >> uj) {
      total += uj / 1e6;
      any = true;
    }
  }
  return any ? std::optional<double>(total) : std::nullopt;
}

std::vector<std::pair<std::string, std::vector<std::string>>> grid_axes(const std::vector<std::string>& grid) {
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;
  for (const std::string& g : grid) {
    const size_t eq = g.find('=');
    std::vector<std::string> values;
    std::stringstream ss(g.substr(eq + 1));
    for (std::string v; std::getline(ss, v, ',');) values.push_back(v);
    axes.emplace_back(g.substr(0, eq), values);
  }
  return axes;
}

// "attention.variant=flash" from "stages.attention.variant=flash": the last two key parts.
std::string short_name(const std::string& key, const std::string& value) {
  size_t dot = key.rfind('.');
  if (dot != std::string::npos && dot > 0) dot = key.rfind('.', dot - 1);
  return (dot == std::string::npos ? key : key.substr(dot + 1)) + "=" + value;
}

std::vector<std::pair<std::string, Config>> variant_configs(const AbOptions& o) {
  std::vector<std::pair<std::string, Config>> out;
  // --model and --set apply to the first config (and its grid); a --vs config keeps its own model.
  auto with_flags = [&](const std::string& config_path, bool first) {
    LineFlags f = o.base;
    f.config = config_path;
    if (!first) f.model.clear();
    return make_config(f);
  };
  if (!o.grid.empty()) {
    out = grid_configs(with_flags(o.base.config, true), o.grid);
  } else {
    out.emplace_back(o.base.config.empty() ? "base" : std::filesystem::path(o.base.config).stem().string(),
                     with_flags(o.base.config, true));
  }
  for (const std::string& f : o.vs) out.emplace_back(std::filesystem::path(f).stem().string(), with_flags(f, false));
  return out;
}

// A grid that switches a stage's variant keeps the stage's other parameters, which were written
// for the variant of the config (block for flash, say): those the new variant does not declare are
// dropped, each with a note, rather than failing the whole grid.
void drop_undeclared(Config& c, const std::string& stage, const StageRegistry& reg, const std::string& variant_name) {
  const auto kind = std::find_if(std::begin(kAllStageKinds), std::end(kAllStageKinds),
                                 [&](StageKind k) { return stage == stage_kind_name(k); });
  auto choice = c.stages.find(stage);
  if (kind == std::end(kAllStageKinds) || choice == c.stages.end()) return;
  StageChoice& ch = choice->second;
  const std::string backend = *kind == StageKind::Tokenizer || *kind == StageKind::Sampler ? "any"
                              : ch.backend.empty()                                       ? c.runtime.backend
                                                                                         : ch.backend;
  const RegisteredStage* e = reg.find(*kind, ch.variant, backend);
  if (!e) return;  // the graph names an unknown variant
  std::erase_if(ch.params, [&](const auto& kv) {
    const auto& [name, value] = kv;
    const bool declared = std::any_of(e->entry.params.begin(), e->entry.params.end(),
                                      [&](const ParamSpec& p) { return p.name == name; });
    if (!declared)
      spdlog::info("variant {}: {}.{} = {} dropped, {} declares no such parameter", variant_name, stage, name,
                   param_value_string(value.value), stage_key_string(*kind, ch.variant, backend));
    return !declared;
  });
}

void build(Variant& v, const Plugins& plugins, int context, bool depth) {
  if (v.config.runtime.context < context) v.config.runtime.context = context;
  // Without a depth every repetition feeds the same prompt, and a cached prefix would time the
  // cache, not the line. With one, the cache is what holds the context for every repetition (each
  // brings prompt tokens of its own after it).
  v.config.kv_cache.prefix_caching = depth;
  v.config.runtime.max_seqs = 1;
  v.model = open_model(v.config.model.path);
  v.graph = build_graph(v.config, *v.model, plugins.registry);
  v.pipeline = std::make_unique<Pipeline>(v.graph, *v.model, plugins.registry, pipeline_options(v.config));
  v.draft = load_draft(v.config, plugins.registry, *v.pipeline);
}

// One request through the engine with the variant's chain: the prompt's prefill (after the
// context, which the prefix cache holds from the first request on) and first token, then n_gen
// more tokens, each a step of its own.
void measure(Variant& v, std::span<const int32_t> context, const std::vector<int32_t>& prompt, int n_gen) {
  Engine engine(*v.pipeline, engine_options(v.config, v.draft ? v.draft->pipeline.get() : nullptr));
  RequestOptions r;
  r.prompt.assign(context.begin(), context.end());
  r.prompt.insert(r.prompt.end(), prompt.begin(), prompt.end());
  r.max_tokens = n_gen + 1;
  r.ignore_eos = true;
  ChoiceStats stats;
  std::string error;
  const auto t0 = clock_type::now();
  engine.submit(std::move(r), [&](const Update& u) {
    if (u.finish == FinishReason::Error) error = u.error;
    if (u.stats) stats = *u.stats;
  });
  engine.run();
  if (!error.empty()) throw Error("variant " + v.name + ": " + error);
  const double pp_s = std::chrono::duration<double>(stats.first_token - t0).count();
  const double tg_s = std::chrono::duration<double>(stats.finished - stats.first_token).count();
  // The tokens computed: a context's last partial block is computed again (only whole blocks
  // are cached), and the first request computes all of it.
  v.pp_tps.push_back((stats.n_prompt - stats.n_cached) / pp_s);
  v.draft_steps += stats.draft_steps;
  v.draft_tokens += stats.draft_tokens;
  v.accepted_tokens += stats.accepted_tokens;
  v.ttft_ms.push_back(pp_s * 1e3);
  if (n_gen > 0) {
    v.tg_tps.push_back(n_gen / tg_s);
    v.itl_ms.push_back(tg_s * 1e3 / n_gen);
  }
}

// Decode cost per token from the stages' own counts, over a few metered steps after the context
// and the prompt (the context from the prefix cache, where measure left it).
void meter_decode(Variant& v, std::span<const int32_t> context, const std::vector<int32_t>& prompt) {
  Pipeline& p = *v.pipeline;
  const int32_t seq = p.kv().new_sequence();
  std::vector<int32_t> tokens(context.begin(), context.end());
  tokens.insert(tokens.end(), prompt.begin(), prompt.end());
  const int32_t cached = p.kv().blocks().attach_prefix(seq, tokens);
  prefill(p, seq, std::span<const int32_t>(tokens).subspan(static_cast<size_t>(cached)));
  p.reset_meters();
  p.set_metering(true);
  const int steps = 4;
  for (int i = 0; i < steps; ++i) {
    int32_t t = prompt[i % prompt.size()];
    prefill(p, seq, std::span<const int32_t>(&t, 1));
  }
  p.set_metering(false);
  p.kv().free_sequence(seq);
  for (const auto& [kind, m] : p.meters()) {
    v.flops_per_token += m.cost.flops / steps;
    v.bytes_per_token += m.cost.bytes / steps;
  }
}

std::vector<int32_t> read_text_tokens(const std::string& path, const Tokenizer& tok, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot read the " + what);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return tok.encode(text, false, false);
}

std::string fmt(double x, const char* f = "%.2f") {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

nlohmann::json to_json(const Variant& v, const AbOptions& o) {
  nlohmann::json j = {{"variant", v.name},
                      {"model", v.config.model.path.string()},
                      {"n_depth", o.n_depth},
                      {"pp_tps", mean(v.pp_tps)},
                      {"pp_tps_stddev", stddev(v.pp_tps)},
                      {"tg_tps", mean(v.tg_tps)},
                      {"tg_tps_stddev", stddev(v.tg_tps)},
                      {"ttft_ms", mean(v.ttft_ms)},
                      {"itl_ms", mean(v.itl_ms)},
                      {"peak_memory_mib", v.peak_mib},
                      {"flops_per_token", v.flops_per_token},
                      {"bytes_per_token", v.bytes_per_token},
                      {"memory_roofline_pct", 100.0 * v.bytes_per_token * mean(v.tg_tps) / (o.roofline_gbs * 1e9)}};
  if (v.config.speculative.proposer != "none") {
    j["spec_draft_steps"] = v.draft_steps;
    j["spec_draft_tokens"] = v.draft_tokens;
    j["spec_accepted_tokens"] = v.accepted_tokens;
  }
  if (o.roofline_gflops > 0)
    j["compute_roofline_pct"] = 100.0 * v.flops_per_token * mean(v.tg_tps) / (o.roofline_gflops * 1e9);
  j["joules_per_token"] = v.joules_per_token ? nlohmann::json(*v.joules_per_token) : nlohmann::json(nullptr);
  if (v.quality) {
    j["perplexity"] = v.quality->perplexity();
    j["mean_kl"] = v.quality->mean_kl();
    j["top1_agreement"] = v.quality->top1();
    j["scored_tokens"] = v.quality->n_scored;
  }
  return j;
}

void print_table(const std::vector<Variant>& vs, const AbOptions& o) {
  const std::string at = o.n_depth > 0 ? " @ d" + std::to_string(o.n_depth) : "";  // as the plain bench's tests
  std::printf("| variant | pp%d%s t/s | tg%d%s t/s | TTFT ms | ITL ms | peak MiB | MFLOP/tok | MB/tok | %% bw | %s J/tok | ppl | KL | top-1 |\n",
              o.n_prompt, at.c_str(), o.n_gen, at.c_str(), o.roofline_gflops > 0 ? "% compute |" : "");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|%s---:|---:|---:|---:|\n", o.roofline_gflops > 0 ? "---:|" : "");
  for (const Variant& v : vs) {
    const double tg = mean(v.tg_tps);
    if (v.config.speculative.proposer != "none")
      spdlog::info("variant {}: {} proposer, {} of {} drafts accepted ({:.0f}%), {:.2f} tokens a step, tg {:.2f}x {}'s",
                   v.name, v.config.speculative.proposer, v.accepted_tokens, v.draft_tokens,
                   v.draft_tokens ? 100.0 * static_cast<double>(v.accepted_tokens) / static_cast<double>(v.draft_tokens) : 0.0,
                   v.draft_steps ? 1.0 + static_cast<double>(v.accepted_tokens) / static_cast<double>(v.draft_steps) : 1.0,
                   mean(vs.front().tg_tps) > 0 ? tg / mean(vs.front().tg_tps) : 0.0, vs.front().name);
    std::string compute = o.roofline_gflops > 0
                              ? fmt(100.0 * v.flops_per_token * tg / (o.roofline_gflops * 1e9), "%.1f") + " | "
                              : "";
    std::printf("| %s | %s ± %s | %s ± %s | %s | %s | %s | %s | %s | %s | %s%s | %s | %s | %s |\n", v.name.c_str(),
                fmt(mean(v.pp_tps)).c_str(), fmt(stddev(v.pp_tps)).c_str(), fmt(tg).c_str(),
                fmt(stddev(v.tg_tps)).c_str(), fmt(mean(v.ttft_ms)).c_str(), fmt(mean(v.itl_ms), "%.3f").c_str(),
                fmt(v.peak_mib, "%.0f").c_str(), fmt(v.flops_per_token / 1e6, "%.1f").c_str(),
                fmt(v.bytes_per_token / 1e6, "%.2f").c_str(),
                fmt(100.0 * v.bytes_per_token * tg / (o.roofline_gbs * 1e9), "%.1f").c_str(), compute.c_str(),
                v.joules_per_token ? fmt(*v.joules_per_token, "%.4f").c_str() : "n/a",
                v.quality ? fmt(v.quality->perplexity(), "%.4f").c_str() : "n/a",
                v.quality ? fmt(v.quality->mean_kl(), "%.5f").c_str() : "n/a",
                v.quality ? fmt(v.quality->top1(), "%.4f").c_str() : "n/a");
  }
}

// Speed against quality, one labelled point per variant, drawn by gnuplot.
void draw_chart(const std::vector<Variant>& vs, const AbOptions& o) {
  const bool have_quality = vs.front().quality.has_value();
  std::filesystem::path data = std::filesystem::path(o.chart).replace_extension(".dat");
  {
    std::ofstream d(data);
    for (const Variant& v : vs)
      d << mean(v.tg_tps) << " " << (have_quality ? v.quality->mean_kl() : mean(v.pp_tps)) << " \"" << v.name << "\"\n";
  }
  std::string script = "set terminal pngcairo size 900,600 noenhanced\nset output '" + o.chart + "'\n" +
                       "set title 'semline A/B: speed vs " + (have_quality ? "quality" : "prefill") + "'\n" +
                       "set xlabel 'decode tokens/s (tg" + std::to_string(o.n_gen) +
                       (o.n_depth > 0 ? " @ d" + std::to_string(o.n_depth) : "") + ")'\n" +
                       "set ylabel '" + (have_quality ? "mean KL divergence vs " + vs.front().name : "prefill tokens/s") +
                       "'\nset grid\nset offsets graph 0.1, graph 0.1, graph 0.1, graph 0.1\n" +
                       "plot '" + data.string() + "' using 1:2 with points pt 7 ps 2 notitle, '' using 1:2:3 with labels offset 0,1.5 notitle\n";
  FILE* g = popen("gnuplot 2>&1", "w");
  if (!g) {
    spdlog::warn("gnuplot is not available: no chart written");
    return;
  }
  std::fputs(script.c_str(), g);
  if (pclose(g) != 0) spdlog::warn("gnuplot failed: no chart written to {}", o.chart);
  else spdlog::info("chart written to {}", o.chart);
  std::filesystem::remove(data);
}

}  // namespace

std::vector<std::pair<std::string, Config>> grid_configs(const Config& base, const std::vector<std::string>& grid) {
  std::vector<std::pair<std::string, Config>> cur = {{"", base}};
  for (const auto& [key, values] : grid_axes(grid)) {
    std::vector<std::pair<std::string, Config>> next;
    for (const auto& [name, c] : cur)
      for (const std::string& v : values) {
        Config copy = c;
        apply_override(copy, key + "=" + v);
        next.emplace_back(name.empty() ? short_name(key, v) : name + " " + short_name(key, v), copy);
      }
    cur = std::move(next);
  }
  return cur;
}

void drop_undeclared_params(std::vector<std::pair<std::string, Config>>& variants, const std::vector<std::string>& grid,
                            const StageRegistry& reg) {
  for (const auto& [key, values] : grid_axes(grid)) {
    const std::string lead = "stages.", tail = ".variant";
    if (!key.starts_with(lead) || !key.ends_with(tail) || key.size() <= lead.size() + tail.size()) continue;
    const std::string stage = key.substr(lead.size(), key.size() - lead.size() - tail.size());
    for (auto& [name, c] : variants) drop_undeclared(c, stage, reg, name);
  }
}

bool is_grid_assignment(const std::string& a) {
  const size_t eq = a.find('=');
  if (eq == std::string::npos || eq + 1 >= a.size()) return false;
  const char first = a[eq + 1];
  return a.find(',', eq) != std::string::npos && first != '[' && first != '{' && first != '"' && first != '\'';
}

void run_ab(const AbOptions& o) {
  auto configs = variant_configs(o);
  if (configs.size() < 2) throw Error("the A/B bench needs at least two variants (--vs FILE or --set KEY=a,b)");
  // One registry serves every variant: the plugins any of their configs names, so a --vs config
  // can bring a variant of its own.
  std::vector<std::filesystem::path> paths;
  std::map<std::string, std::string> prefer;
  for (const auto& [name, c] : configs) {
    for (const auto& p : c.runtime.plugin_paths)
      if (std::find(paths.begin(), paths.end(), p) == paths.end()) paths.push_back(p);
    for (const auto& [key, plugin] : c.runtime.prefer) {
      auto [it, fresh] = prefer.emplace(key, plugin);
      if (!fresh && it->second != plugin)
        throw Error("variants disagree on [runtime.prefer] \"" + key + "\": '" + it->second + "' and '" + plugin +
                    "' (variant " + name + "); one process loads one winner");
    }
  }
  auto plugins = load_plugins(paths, prefer);
  std::vector<std::pair<std::string, Config>> gridded(configs.begin(), configs.end() - static_cast<std::ptrdiff_t>(o.vs.size()));
  drop_undeclared_params(gridded, o.grid, plugins->registry);
  std::copy(gridded.begin(), gridded.end(), configs.begin());
  const bool deep = o.n_depth > 0;
  if (deep && !o.prompt_file.empty())
    throw Error("--prompt-file with --n-depth: the A/B bench at a depth times new random tokens after the context in "
                "every repetition (one text would be served from the prefix cache from the second on); drop one of them");
  // Room for the context and, once, the prompt of a repetition and its tokens.
  const int context = std::max(o.n_depth + o.n_prompt + o.n_gen + 8, o.text.empty() ? 0 : o.window);

  std::vector<Variant> vs(configs.size());
  std::mt19937 rng(1234);
  std::vector<int32_t> prompt, depth_context;
  std::uniform_int_distribution<int32_t> tok;  // over the first variant's vocabulary
  // At a depth each request brings new tokens after the context; without one, the same prompt.
  auto next_prompt = [&] {
    if (deep)
      for (auto& t : prompt) t = tok(rng);
    return prompt;
  };
  // Pass 1, one variant alive at a time: its peak memory and its decode cost.
  for (size_t i = 0; i < vs.size(); ++i) {
    vs[i].name = configs[i].first;
    vs[i].config = configs[i].second;
    reset_peak_memory();
    build(vs[i], *plugins, context, deep);
    if (prompt.empty() && !o.prompt_file.empty()) {
      // The file's text, cut at n_prompt tokens: variants whose speed depends on what the text
      // says (speculative drafts) are timed on text, not on random tokens.
      const Tokenizer& t = vs[i].pipeline->tokenizer();
      prompt = read_text_tokens(o.prompt_file, t, "prompt file");
      if (t.bos() >= 0) prompt.insert(prompt.begin(), t.bos());
      if (prompt.size() > static_cast<size_t>(std::max(o.n_prompt, 1))) prompt.resize(static_cast<size_t>(std::max(o.n_prompt, 1)));
      if (prompt.size() < 2) throw Error(o.prompt_file + ": the prompt file holds no text");
    }
    if (i == 0) tok = std::uniform_int_distribution<int32_t>(0, static_cast<int32_t>(vs[i].graph.hp.n_vocab - 1));
    if (prompt.empty()) {
      prompt.resize(std::max(o.n_prompt, 1));
      for (auto& t : prompt) t = tok(rng);
      depth_context.resize(static_cast<size_t>(o.n_depth));
      for (auto& t : depth_context) t = tok(rng);
    }
    measure(vs[i], depth_context, next_prompt(), o.n_gen);  // also the warm-up
    vs[i].peak_mib = peak_memory_mib();
    meter_decode(vs[i], depth_context, prompt);
    vs[i].pp_tps.clear(), vs[i].tg_tps.clear(), vs[i].ttft_ms.clear(), vs[i].itl_ms.clear();
    vs[i].draft_steps = vs[i].draft_tokens = vs[i].accepted_tokens = 0;
    // Nothing of it stays resident while the next one is measured: the model's mapped pages
    // would count in that one's peak.
    vs[i].draft.reset();
    vs[i].pipeline.reset();
    vs[i].graph = PipelineGraph{};
    vs[i].model.reset();
  }
  // Pass 2, interleaved: every repetition runs every variant, so drift hits all alike. At a depth,
  // each variant first computes the context once (untimed) into its prefix cache.
  Progress bar("A/B bench");
  const size_t warm = deep ? vs.size() : 0, runs = warm + static_cast<size_t>(o.reps) * vs.size();
  for (size_t i = 0; i < vs.size(); ++i) {
    build(vs[i], *plugins, context, deep);
    if (!deep) continue;
    measure(vs[i], depth_context, next_prompt(), 0);
    vs[i].pp_tps.clear(), vs[i].ttft_ms.clear();
    vs[i].draft_steps = vs[i].draft_tokens = vs[i].accepted_tokens = 0;
    bar(i + 1, runs);
  }
  for (int r = 0; r < o.reps; ++r) {
    const std::vector<int32_t> timed = next_prompt();  // every variant times the same tokens
    for (size_t i = 0; i < vs.size(); ++i) {
      auto e0 = rapl_joules();
      measure(vs[i], depth_context, timed, o.n_gen);
      auto e1 = rapl_joules();
      if (e0 && e1 && *e1 > *e0 && o.n_gen > 0)
        vs[i].joules_per_token = (vs[i].joules_per_token.value_or(0) * r + (*e1 - *e0) / (o.n_prompt + o.n_gen)) / (r + 1);
      bar(warm + static_cast<size_t>(r) * vs.size() + i + 1, runs);
    }
  }
  // Quality against the first variant on the same tokens.
  if (!o.text.empty()) {
    std::vector<int32_t> text = read_text_tokens(o.text, vs.front().pipeline->tokenizer(), "quality text file");
    QualityOptions qo{o.window, o.windows};
    vs.front().quality = score_text(*vs.front().pipeline, text, qo);
    for (size_t i = 1; i < vs.size(); ++i) vs[i].quality = score_text(*vs[i].pipeline, text, qo, &*vs.front().quality);
    vs.front().quality->logprobs.clear();
  }

  if (o.output == "json") {
    nlohmann::json j = nlohmann::json::array();
    for (const Variant& v : vs) j.push_back(to_json(v, o));
    std::printf("%s\n", j.dump(2).c_str());
  } else if (o.output == "csv") {
    std::printf("variant,model,pp_tps,tg_tps,ttft_ms,itl_ms,peak_memory_mib,flops_per_token,bytes_per_token,joules_per_token,perplexity,mean_kl,top1_agreement\n");
    for (const Variant& v : vs)
      std::printf("\"%s\",\"%s\",%.3f,%.3f,%.3f,%.4f,%.1f,%.0f,%.0f,%s,%s,%s,%s\n", v.name.c_str(),
                  v.config.model.path.string().c_str(), mean(v.pp_tps), mean(v.tg_tps), mean(v.ttft_ms),
                  mean(v.itl_ms), v.peak_mib, v.flops_per_token, v.bytes_per_token,
                  v.joules_per_token ? fmt(*v.joules_per_token, "%.5f").c_str() : "",
                  v.quality ? fmt(v.quality->perplexity(), "%.5f").c_str() : "",
                  v.quality ? fmt(v.quality->mean_kl(), "%.6f").c_str() : "",
                  v.quality ? fmt(v.quality->top1(), "%.5f").c_str() : "");
  } else {
    print_table(vs, o);
  }
  if (!o.chart.empty()) draw_chart(vs, o);
}

}  // namespace semline::app
