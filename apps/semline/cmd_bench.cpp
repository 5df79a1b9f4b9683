// semline bench: prompt processing (ppN) and generation (tgN) speed, in llama-bench's terms, so the
// figures sit beside llama.cpp's: the same flags, the same table, the same JSON field names.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "ab_bench.h"
#include "app.h"
#include "core/engine/generator.h"
#include "core/engine/pipeline.h"
#include "core/graph/graph.h"
#include "core/util/text.h"
#include "stats.h"

namespace semline::app {

namespace {

struct BenchOpts {
  LineFlags line;
  std::vector<std::string> models;
  std::vector<int> n_prompt = {512};
  std::vector<int> n_gen = {128};
  std::vector<int> n_depth = {0};
  int reps = 5;
  std::vector<int> threads;
  std::string output = "md";
  bool profile = false;
  AbOptions ab;  // A/B mode: --vs, grid --set, quality text, chart
};

struct Record {
  std::string model_filename, model_type, backend;
  uint64_t model_size = 0, model_n_params = 0;
  int n_threads = 0, n_prompt = 0, n_gen = 0, n_depth = 0, n_batch = 0;
  std::string type_k;
  std::vector<double> samples_ns;

  // "tg128", or "tg128 @ d4096" after 4096 tokens of context, as llama-bench names them.
  std::string test() const {
    const std::string t = n_prompt > 0 ? "pp" + std::to_string(n_prompt) : "tg" + std::to_string(n_gen);
    return n_depth > 0 ? t + " @ d" + std::to_string(n_depth) : t;
  }
  std::vector<double> samples_ts() const {
    std::vector<double> ts;
    for (double ns : samples_ns) ts.push_back((n_prompt + n_gen) * 1e9 / ns);
    return ts;
  }
};

// "llama 134M Q4_0": family, parameter count and the weight type most of the bytes have.
std::string model_type(const ModelFile& m, const HParams& hp, uint64_t params) {
  std::map<DType, uint64_t> bytes;
  for (const auto& t : m.tensors())
    if (t.view.ndim >= 2) bytes[t.view.dtype] += t.bytes;
  DType main = DType::F32;
  uint64_t best = 0;
  for (auto [t, b] : bytes)
    if (b > best) best = b, main = t;
  char size[32];
  if (params >= 1000000000ull) std::snprintf(size, sizeof size, "%.1fB", params / 1e9);
  else if (params >= 1000000ull) std::snprintf(size, sizeof size, "%.0fM", params / 1e6);
  else std::snprintf(size, sizeof size, "%.0fK", params / 1e3);
  return hp.arch + " " + size + " " + dtype_name(main);
}

std::vector<int32_t> random_tokens(const Pipeline& p, int n, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(p.hp().n_vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = tok(rng);
  return ids;
}

// One timed run on a sequence holding `context` (its depth): ppN prefills N tokens; tgN decodes N
// tokens one by one. The sequence is brought back to `context` afterwards.
double run_once(Pipeline& p, int32_t seq, std::span<const int32_t> context, const StatePool::Snapshot& state,
                int n_prompt, int n_gen, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(p.hp().n_vocab - 1));
  const std::vector<int32_t> ids = random_tokens(p, std::max(n_prompt, 1), rng);
  auto t0 = std::chrono::steady_clock::now();
  if (n_prompt > 0) {
    prefill(p, seq, ids);
  } else {
    for (int i = 0; i < n_gen; ++i) {
      int32_t t = tok(rng);
      prefill(p, seq, std::span<const int32_t>(&t, 1));
    }
  }
  double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  // Behind a window the positions released cannot come back: the cut then goes further down, and
  // the context is computed again from there (untimed). A recurrent state goes back to the copy
  // taken after the context.
  const int32_t kept = p.kv().blocks().truncate(seq, context), whole = static_cast<int32_t>(context.size());
  if (!p.recurrent()) {
    if (kept < whole) prefill(p, seq, context.subspan(static_cast<size_t>(kept)));
  } else if (kept == whole) {
    p.state().restore(p.kv().view(seq).slot, state);
  } else {
    p.kv().blocks().truncate(seq, {});
    prefill(p, seq, context);
  }
  return ns;
}

std::string human_bytes(uint64_t b) {
  char s[32];
  if (b >= (1ull << 30)) std::snprintf(s, sizeof s, "%.2f GiB", b / 1073741824.0);
  else std::snprintf(s, sizeof s, "%.2f MiB", b / 1048576.0);
  return s;
}

std::string human_params(uint64_t n) {
  char s[32];
  if (n >= 1000000000ull) std::snprintf(s, sizeof s, "%.2f B", n / 1e9);
  else if (n >= 1000000ull) std::snprintf(s, sizeof s, "%.2f M", n / 1e6);
  else std::snprintf(s, sizeof s, "%.2f K", n / 1e3);
  return s;
}

void print_markdown(const std::vector<Record>& recs) {
  std::printf("| model | size | params | backend | threads | test | t/s |\n");
  std::printf("| ----- | ---: | -----: | ------- | ------: | ---: | --: |\n");
  for (const Record& r : recs) {
    auto ts = r.samples_ts();
    std::printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f |\n", r.model_type.c_str(), human_bytes(r.model_size).c_str(),
                human_params(r.model_n_params).c_str(), r.backend.c_str(), r.n_threads, r.test().c_str(), mean(ts),
                stddev(ts));
  }
}

nlohmann::json to_json(const Record& r) {
  auto ts = r.samples_ts();
  std::vector<uint64_t> ns;
  for (double x : r.samples_ns) ns.push_back(static_cast<uint64_t>(x));
  return {{"model_filename", r.model_filename}, {"model_type", r.model_type}, {"model_size", r.model_size},
          {"model_n_params", r.model_n_params}, {"backends", r.backend},      {"n_batch", r.n_batch},
          {"n_threads", r.n_threads},           {"type_k", r.type_k},         {"n_prompt", r.n_prompt},
          {"n_gen", r.n_gen},                   {"n_depth", r.n_depth},
          {"avg_ns", static_cast<uint64_t>(mean(r.samples_ns))},
          {"stddev_ns", static_cast<uint64_t>(stddev(r.samples_ns))},        {"avg_ts", mean(ts)},
          {"stddev_ts", stddev(ts)},            {"samples_ns", ns},           {"samples_ts", ts}};
}

void print_csv(const std::vector<Record>& recs) {
  std::printf("model_filename,model_type,model_size,model_n_params,backends,n_threads,n_prompt,n_gen,avg_ns,stddev_ns,avg_ts,stddev_ts\n");
  for (const Record& r : recs) {
    auto ts = r.samples_ts();
    std::printf("\"%s\",\"%s\",%llu,%llu,%s,%d,%d,%d,%.0f,%.0f,%.6f,%.6f\n", r.model_filename.c_str(),
                r.model_type.c_str(), (unsigned long long)r.model_size, (unsigned long long)r.model_n_params,
                r.backend.c_str(), r.n_threads, r.n_prompt, r.n_gen, mean(r.samples_ns), stddev(r.samples_ns),
                mean(ts), stddev(ts));
  }
}

// Where the time of one test went, per stage kind, from the line's meters (which synchronise after
// every stage, so the total is a little above the unmetered runs).
void print_profile(const std::string& test, const Pipeline& p) {
  double total = 0;
  for (const auto& [kind, m] : p.meters()) total += m.seconds;
  std::fprintf(stderr, "profile %s: %-10s %7s %9s %9s\n", test.c_str(), "stage", "time", "GFLOP/s", "GB/s");
  for (const auto& [kind, m] : p.meters())
    std::fprintf(stderr, "profile %s: %-10s %6.1f%% %9.2f %9.2f\n", test.c_str(), stage_kind_name(kind),
                 100.0 * m.seconds / total, m.cost.flops / m.seconds / 1e9, m.cost.bytes / m.seconds / 1e9);
  // A split line: the stages' share above includes none of the time between them spent in the
  // communicator (the leader's step messages and the all-reduces, waiting for the slowest rank).
  if (p.all_reduces() > 0)
    std::fprintf(stderr, "profile %s: communication %.1f%% of the stages' time: %lld all-reduces, %.1f us each (step messages included)\n",
                 test.c_str(), 100.0 * p.comm_seconds() / total, static_cast<long long>(p.all_reduces()),
                 1e6 * p.comm_seconds() / static_cast<double>(p.all_reduces()));
}

void bench(const BenchOpts& o) {
  std::vector<Record> recs;
  bool following = false;  // a following rank: the leader prints the records
  std::vector<std::string> models = o.models;
  if (models.empty()) models.push_back("");  // the config's model
  std::vector<int> threads = o.threads;
  if (threads.empty()) threads.push_back(0);
  for (const std::string& model_path : models) {
    LineFlags lf = o.line;
    if (!model_path.empty()) lf.model = model_path;
    Config c = make_config(lf);
    const int longest = std::max(*std::max_element(o.n_prompt.begin(), o.n_prompt.end()),
                                 *std::max_element(o.n_gen.begin(), o.n_gen.end())) +
                        *std::max_element(o.n_depth.begin(), o.n_depth.end());
    if (c.runtime.context == 0 || c.runtime.context < longest) c.runtime.context = std::max(longest, 16);
    c.runtime.max_seqs = 1;  // one sequence at a time, as llama-bench measures
    c.kv_cache.prefix_caching = false;
    auto plugins = load_plugins(c.runtime.plugin_paths, c.runtime.prefer);
    auto model = open_model(c.model.path);
    PipelineGraph g = build_graph(c, *model, plugins->registry);
    const auto comm = make_communicator(c, plugins->registry);
    uint64_t size = 0, params = 0;
    for (const auto& t : model->tensors()) {
      size += t.bytes;
      params += static_cast<uint64_t>(t.view.elements());
    }
    for (int th : threads) {
      c.runtime.threads = th;
      PipelineOptions po = pipeline_options(c);
      po.comm = comm.get();
      Pipeline p(g, *model, plugins->registry, po);
      if (followed(p)) {
        following = true;
        continue;
      }
      const int n_threads = th > 0 ? th : static_cast<int>(std::thread::hardware_concurrency());
      std::mt19937 rng(1234);
      struct Test {
        int np, ng, depth;
      };
      std::vector<Test> tests;
      for (int depth : o.n_depth) {
        for (int np : o.n_prompt)
          if (np > 0) tests.push_back({np, 0, depth});
        for (int ng : o.n_gen)
          if (ng > 0) tests.push_back({0, ng, depth});
      }
      for (auto [np, ng, depth] : tests) {
        Record r;
        r.model_filename = c.model.path.string();
        r.model_type = model_type(*model, g.hp, params);
        r.model_size = size;
        r.model_n_params = params;
        r.backend = join(g.backends) +
                    (c.parallel.tensor > 1 ? " tp" + std::to_string(c.parallel.tensor) +
                                                 (c.parallel.expert_parallel ? " ep" : "")
                                           : "") +
                    (c.parallel.pipeline > 1 ? " pp" + std::to_string(c.parallel.pipeline) : "");
        r.n_threads = n_threads;
        r.n_prompt = np;
        r.n_gen = ng;
        r.n_depth = depth;
        r.n_batch = p.max_batch_tokens();
        r.type_k = c.kv_cache.dtype;
        Progress bar("bench " + r.test());
        // The context is prefilled once, untimed; every run continues from it.
        const int32_t seq = p.kv().new_sequence();
        const std::vector<int32_t> context = random_tokens(p, depth, rng);
        if (depth > 0) prefill(p, seq, context);
        const StatePool::Snapshot state =
            p.recurrent() ? p.state().save(p.kv().view(seq).slot) : StatePool::Snapshot{};
        run_once(p, seq, context, state, np, ng, rng);  // warm-up: pages in the weights, settles the threads
        for (int i = 0; i < o.reps; ++i) {
          r.samples_ns.push_back(run_once(p, seq, context, state, np, ng, rng));
          bar(i + 1, o.reps);
        }
        if (o.profile) {
          p.reset_meters();
          p.set_metering(true);
          run_once(p, seq, context, state, np, ng, rng);
          p.set_metering(false);
          print_profile(r.test(), p);
        }
        p.kv().free_sequence(seq);
        recs.push_back(std::move(r));
      }
    }
  }
  if (following) return;
  if (o.output == "json") {
    nlohmann::json j = nlohmann::json::array();
    for (const Record& r : recs) j.push_back(to_json(r));
    std::printf("%s\n", j.dump(2).c_str());
  } else if (o.output == "csv") {
    print_csv(recs);
  } else {
    print_markdown(recs);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure prompt (ppN) and generation (tgN) speed, llama-bench style");
  auto o = std::make_shared<BenchOpts>();
  cmd->add_option("-c,--config", o->line.config, "Pipeline config (TOML)");
  cmd->add_option("-m,--model", o->models, "Model file(s) (GGUF); comma-separated or repeated")->delimiter(',');
  cmd->add_option("--set", o->line.sets, "Override a config key; KEY=a,b,c makes one A/B variant per value");
  cmd->add_option("--plugin-path", o->line.plugin_paths, "Extra folder or file to load plugins from");
  cmd->add_option("--spec", o->line.spec, "A/B: the proposer of every variant a grid does not set; speculative.proposer");
  cmd->add_option("--spec-k", o->line.spec_k, "A/B: draft tokens per step at most; speculative.k")->check(CLI::Range(1, 64));
  cmd->add_option("--draft", o->line.draft, "A/B: the draft model; speculative.draft_model (and proposer = draft)");
  cmd->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens per pp test (0 = none)")->delimiter(',');
  cmd->add_option("-n,--n-gen", o->n_gen, "Generated tokens per tg test (0 = none)")->delimiter(',');
  cmd->add_option("-d,--n-depth", o->n_depth, "Tokens of context each test starts from (prefilled once, untimed)")
      ->delimiter(',')
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-r,--repetitions", o->reps, "Repetitions of each test")->check(CLI::Range(1, 1000));
  cmd->add_option("-t,--threads", o->threads, "Threads (0 = all cores)")->delimiter(',');
  cmd->add_option("-o,--output", o->output, "md | json | csv")->check(CLI::IsMember({"md", "json", "csv"}));
  cmd->add_flag("--profile", o->profile, "After each test, one metered run: time, GFLOP/s and GB/s per stage kind (stderr)");
  cmd->add_option("--vs", o->ab.vs, "A/B: another config to compare with the first (repeatable)");
  cmd->add_option("--text", o->ab.text, "A/B: text file for perplexity, KL divergence and top-1 agreement");
  cmd->add_option("--prompt-file", o->ab.prompt_file, "A/B: time this text as the prompt, cut at -p tokens (default: random tokens)");
  cmd->add_option("--window", o->ab.window, "A/B: tokens per quality window")->check(CLI::Range(4, 65536));
  cmd->add_option("--windows", o->ab.windows, "A/B: most quality windows")->check(CLI::Range(1, 100000));
  cmd->add_option("--roofline-gbs", o->ab.roofline_gbs, "A/B: memory bandwidth of this machine, GB/s");
  cmd->add_option("--roofline-gflops", o->ab.roofline_gflops, "A/B: compute peak of this machine, GFLOP/s");
  cmd->add_option("--chart", o->ab.chart, "A/B: write a speed-vs-quality PNG chart here (gnuplot)");
  add_bench_serve_command(*cmd);
  add_bench_comm_command(*cmd);
  cmd->callback([o, cmd] {
    if (cmd->got_subcommand("serve") || cmd->got_subcommand("comm")) return;  // the subcommand ran
    std::vector<std::string> plain, grid;
    for (const std::string& s : o->line.sets) (is_grid_assignment(s) ? grid : plain).push_back(s);
    if (o->ab.vs.empty() && grid.empty()) {
      if (!o->ab.prompt_file.empty() || !o->ab.text.empty())
        throw Error(std::string(o->ab.text.empty() ? "--prompt-file" : "--text") +
                    " is for the A/B bench: add --vs CONFIG or a grid such as --set speculative.proposer=none,ngram");
      // llama-bench's tests time the line itself; drafts are the engine's, compared in the A/B.
      if (!o->line.spec.empty() || !o->line.draft.empty())
        throw Error(std::string(o->line.draft.empty() ? "--spec" : "--draft") +
                    " is for the A/B bench, which times speculative variants against plain decoding: add a grid "
                    "such as --set speculative.proposer=none,draft (and --prompt-file FILE for text that repeats)");
      bench(*o);
      return;
    }
    if (o->n_depth.size() > 1)
      throw Error("the A/B bench compares its variants at one --n-depth; got " + std::to_string(o->n_depth.size()) +
                  " (run it once per depth, or the plain bench for several)");
    AbOptions ab = o->ab;
    ab.base = o->line;
    ab.base.sets = plain;
    if (o->models.size() > 1) throw Error("the A/B bench takes one --model (or none: each config's own)");
    if (!o->models.empty()) ab.base.model = o->models.front();
    ab.grid = grid;
    ab.n_prompt = o->n_prompt.front();
    ab.n_gen = o->n_gen.front();
    ab.n_depth = o->n_depth.front();
    ab.reps = o->reps;
    ab.output = o->output;
    run_ab(ab);
  });
}

}  // namespace semline::app
