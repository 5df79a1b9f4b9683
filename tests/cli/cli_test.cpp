// The semline command as a user runs it: each subcommand on the shipped models, and the one-line
// error (exit code 1, no signal) on bad input.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include <nlohmann/json.hpp>
#include <semline/plugin.h>

#include "common/hf_writer.h"
#include "common/seed.h"
#include "core/model/gguf.h"
#include "core/model/model_file.h"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;

namespace {

const std::string kModels = SEMLINE_MODELS_DIR;
const std::string kStories = kModels + "/gguf/stories260K.gguf";

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Result run_cli_raw(const std::string& cmd) {
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  REQUIRE(WIFEXITED(status));  // never a signal
  r.code = WEXITSTATUS(status);
  return r;
}

Result run_cli(const std::string& args) {
  return run_cli_raw(std::string(SEMLINE_BIN_DIR) + "/semline " + args + " 2>&1");
}

// The same under a 20 s timeout (exit code 124).
Result run_cli_timed(const std::string& args) {
  return run_cli_raw("timeout 20 " + std::string(SEMLINE_BIN_DIR) + "/semline " + args + " 2>&1");
}

// The largest resident size any child process of this test has had, in MiB.
double children_peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("semline-cli-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST_CASE("semline plugins lists the built plugins with their entries and parameters") {
  Result r = run_cli("plugins");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("cpu") && Contains("attention flash@cpu") && Contains("tokenizer spm@any") &&
                        Contains("sampler top_p@any") && Contains("arch    llama") && Contains("arch    gemma2") &&
                        Contains("(ABI " + std::to_string(SEMLINE_ABI_MAJOR) + "." +
                                 std::to_string(SEMLINE_ABI_MINOR) + ")"));
}

TEST_CASE("semline inspect shows hyper-parameters, tokenizer and tensors of stories260K") {
  Result r = run_cli("inspect " + kStories);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("n_embd 64") && Contains("n_head_kv 4") && Contains("512 tokens") &&
                        Contains("blk.4.ffn_down.weight") && Contains("tensors    48"));
}

TEST_CASE("semline graph prints the validated line as text and Mermaid") {
  const std::string cfg = std::string(SEMLINE_SOURCE_DIR) + "/configs/stories260K-mixed.toml";
  Result text = run_cli("graph -c " + cfg);
  REQUIRE(text.code == 0);
  CHECK_THAT(text.out, Contains("blocks 0-1") && Contains("attention dense@cpu") && Contains("blocks 2-4"));
  Result mermaid = run_cli("graph -c " + cfg + " -f mermaid");
  REQUIRE(mermaid.code == 0);
  CHECK_THAT(mermaid.out, StartsWith("flowchart TD"));
}

TEST_CASE("semline tokenize prints ids for a model and for a vocabulary-only GGUF") {
  Result r = run_cli("tokenize -m " + kStories + " -t \"Once upon a time\"");
  REQUIRE(r.code == 0);
  CHECK(r.out == "1 403 407 261 378\n");
  Result nobos = run_cli("tokenize -m " + kModels + "/vocab/ggml-vocab-gpt-2.gguf -t \"Hello world\" --no-bos --pieces");
  REQUIRE(nobos.code == 0);
  CHECK(nobos.out == "15496:'Hello' 995:'Ġworld'\n");
  // Control tokens written in the text are text, unless --special.
  const std::string eot = "tokenize -m " + kModels + "/vocab/ggml-vocab-gpt-2.gguf -t \"Hi<|endoftext|>\" --no-bos";
  Result text = run_cli(eot), special = run_cli(eot + " --special");
  REQUIRE(text.code == 0);
  REQUIRE(special.code == 0);
  CHECK(text.out == "17250 27 91 437 1659 5239 91 29\n");
  CHECK(special.out == "17250 50256\n");
}

TEST_CASE("semline run generates the known greedy story and reports speeds") {
  Result r = run_cli("run -c " + std::string(SEMLINE_SOURCE_DIR) + "/configs/stories260K.toml -p \"Once upon a time\" -n 24");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, StartsWith("Once upon a time, there was a little girl named Lily.") &&
                        Contains("generation 24 tokens") && Contains("time to first token"));
  Result stop = run_cli("run -m " + kStories + " -p \"Once upon a time\" -n 100 --stop Lily");
  REQUIRE(stop.code == 0);
  CHECK_THAT(stop.out, StartsWith("Once upon a time, there was a little girl named \n") && Contains("stop: stop string"));
}

TEST_CASE("semline run --spec ngram writes the same text and reports the drafts it accepted") {
  const std::string base = "run -m " + kStories + " -p \"Lily met a cat. Lily met a cat.\" -n 60";
  Result plain = run_cli(base);
  Result spec = run_cli(base + " --spec ngram --spec-k 6");
  REQUIRE(plain.code == 0);
  REQUIRE(spec.code == 0);
  const auto text = [](const std::string& out) { return out.substr(0, out.find("\nprompt ")); };
  CHECK(text(spec.out) == text(plain.out));
  CHECK_THAT(spec.out, Contains("| ngram: ") && Contains(" drafts accepted (") && Contains(" tokens a step"));
  CHECK_THAT(plain.out, !Contains("drafts"));
  Result bad = run_cli(base + " --spec eagle");
  CHECK(bad.code != 0);
  CHECK_THAT(bad.out, StartsWith("error: override 'speculative.proposer=eagle':1:22: speculative.proposer = \"eagle\": "
                                 "no such proposer; known: none, ngram, draft"));
}

TEST_CASE("semline run --draft writes the same text with a draft model, and refuses one of another vocabulary") {
  const std::string base = "run -m " + kStories + " -p \"Once upon a time\" -n 40";
  Result plain = run_cli(base);
  Result spec = run_cli(base + " --draft " + kStories);
  REQUIRE(plain.code == 0);
  REQUIRE(spec.code == 0);
  const auto text = [](const std::string& out) { return out.substr(0, out.find("\nprompt ")); };
  CHECK(text(spec.out) == text(plain.out));
  CHECK_THAT(spec.out, Contains("| draft: ") && Contains(" drafts accepted ("));
  Result bad = run_cli(base + " --draft " + kModels + "/vocab/ggml-vocab-gpt-2.gguf");
  CHECK(bad.code != 0);
  CHECK_THAT(bad.out, Contains("--draft: speculative.draft_model") && Contains("ggml-vocab-gpt-2.gguf"));
  Result none = run_cli(base + " --spec draft");
  CHECK(none.code != 0);
  CHECK_THAT(none.out, Contains("needs speculative.draft_model") && Contains("--draft FILE"));
}

TEST_CASE("sampled runs are reproducible by seed") {
  const std::string base = "run -m " + kStories + " -p \"Once upon a time\" -n 40 --temp 1.0 --top-k 40 ";
  Result a = run_cli(base + "--seed 7"), b = run_cli(base + "--seed 7"), c = run_cli(base + "--seed 8");
  REQUIRE(a.code == 0);
  auto text = [](const std::string& s) { return s.substr(0, s.find("prompt ")); };
  CHECK(text(a.out) == text(b.out));
  CHECK(text(a.out) != text(c.out));
}

TEST_CASE("convert reproduces stories260K.gguf, synth and quantize write files inspect reads back") {
  fs::path d = temp_dir();
  Result conv = run_cli("convert " + kModels + "/llama2c/stories260K.bin --tokenizer " + kModels +
                        "/llama2c/tok512.bin -o " + (d / "conv.gguf").string() + " --ctx 2048");
  REQUIRE(conv.code == 0);
  auto want = semline::gguf::GgufFile::open(kStories);
  auto got = semline::gguf::GgufFile::open(d / "conv.gguf");
  REQUIRE(got->tensors().size() == want->tensors().size());
  for (size_t i = 0; i < want->tensors().size(); ++i) {
    const auto& a = want->tensors()[i];
    const auto& b = got->tensors()[i];
    CHECK(a.name == b.name);
    CHECK(a.view.dtype == b.view.dtype);
    CHECK(std::equal(a.view.ne, a.view.ne + 4, b.view.ne));
    REQUIRE(a.bytes == b.bytes);
    CHECK(std::memcmp(a.view.host, b.view.host, a.bytes) == 0);
  }

  Result synth = run_cli("synth --preset tiny -t q8_0 -o " + (d / "tiny.gguf").string());
  REQUIRE(synth.code == 0);
  Result inspect = run_cli("inspect " + (d / "tiny.gguf").string());
  REQUIRE(inspect.code == 0);
  CHECK_THAT(inspect.out, Contains("n_embd 64") && Contains("Q8_0"));
  Result run = run_cli("run -m " + (d / "tiny.gguf").string() + " -p \"hello\" -n 8 --ignore-eos");
  CHECK(run.code == 0);

  // A one-block Mixtral with a sliding window: placed on ffn/moe and attention/sliding_window.
  const std::string mix = (d / "mix.gguf").string();
  REQUIRE(run_cli("synth --preset mixtral-tiny --layers 1 --window 32 -t q8_0 -o " + mix).code == 0);
  Result mi = run_cli("inspect " + mix);
  CHECK_THAT(mi.out, Contains("n_expert 8, n_expert_used 2") && Contains("sliding_window 32") &&
                         Contains("blk.0.ffn_gate_exps.weight") && Contains("[256, 512, 8]"));
  Result mg = run_cli("graph -m " + mix);
  REQUIRE(mg.code == 0);
  CHECK_THAT(mg.out, Contains("ffn moe@cpu") && Contains("attention sliding_window@cpu") &&
                         Contains("n_expert 8 (2 used), sliding_window 32"));
  CHECK(run_cli("run -m " + mix + " -p \"hello\" -n 40 --ignore-eos").code == 0);
  Result bad = run_cli("synth --preset mixtral-tiny --experts-used 9 -o " + (d / "bad.gguf").string());
  CHECK(bad.code == 1);
  CHECK_THAT(bad.out, Contains("experts 8 and experts_used 9"));

  Result q = run_cli("quantize " + kStories + " " + (d / "q4.gguf").string() + " -t q4_0");
  REQUIRE(q.code == 0);
  Result qi = run_cli("inspect " + (d / "q4.gguf").string());
  CHECK_THAT(qi.out, Contains("Q4_0") && Contains("blk.0.ffn_down.weight                F32"));
  fs::remove_all(d);
}

TEST_CASE("semline bench speaks llama-bench's JSON") {
  Result r = run_cli("bench -m " + kStories + " -p 16 -n 8 -r 2 -t 1 -o json");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("\"model_filename\"") && Contains("\"n_prompt\": 16") && Contains("\"n_gen\": 8") &&
                        Contains("\"avg_ts\"") && Contains("\"stddev_ts\"") && Contains("\"samples_ts\"") &&
                        Contains("\"n_threads\": 1"));
  Result md = run_cli("bench -m " + kStories + " -p 16 -n 8 -r 2 -t 1");
  CHECK_THAT(md.out, Contains("| model") && Contains("pp16") && Contains("tg8"));
  // -d: each test again from a context of that many tokens, as llama-bench's n_depth.
  Result deep = run_cli("bench -m " + kStories + " -p 8 -n 4 -d 0,40 -r 2 -t 1 -o json");
  REQUIRE(deep.code == 0);
  const auto j = nlohmann::json::parse(deep.out);
  REQUIRE(j.size() == 4);
  CHECK(j[0]["n_depth"] == 0);
  CHECK(j[3]["n_depth"] == 40);
  CHECK(j[3]["n_gen"] == 4);
  Result deep_md = run_cli("bench -m " + kStories + " -p 0 -n 4 -d 40 -r 1 -t 1");
  CHECK_THAT(deep_md.out, Contains("tg4 @ d40"));
  // Behind a window the context cannot be cut back to: it is computed again for every run.
  Result windowed = run_cli("bench -m " + kStories +
                            " --set stages.attention.variant=sliding_window --set stages.attention.window=8"
                            " -p 0 -n 16 -d 24 -r 3 -t 1");
  CHECK(windowed.code == 0);
  CHECK_THAT(windowed.out, Contains("tg16 @ d24"));
  // The A/B bench at one depth: each variant computes the context once into its prefix cache and
  // every repetition continues from it, so a decode step reads the context's keys and values.
  auto ab_rows = [](const std::string& args) {
    Result ab = run_cli("-q bench -m " + kStories + " --set kv_cache.dtype=f32,f16 -p 4 -n 4 -r 2 -t 1 -o json " + args);
    REQUIRE(ab.code == 0);
    return nlohmann::json::parse(ab.out.substr(ab.out.find('[')));
  };
  const auto flat = ab_rows(""), at_depth = ab_rows("-d 200");
  REQUIRE(at_depth.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    INFO(at_depth[i].dump());
    CHECK(at_depth[i]["n_depth"] == 200);
    CHECK(flat[i]["n_depth"] == 0);
    CHECK(at_depth[i]["tg_tps"].get<double>() > 0);
    CHECK(at_depth[i]["bytes_per_token"].get<double>() > flat[i]["bytes_per_token"].get<double>());
  }
  Result ab_md = run_cli("bench -m " + kStories + " --set kv_cache.dtype=f32,f16 -p 4 -n 4 -d 40 -r 1 -t 1");
  CHECK_THAT(ab_md.out, Contains("tg4 @ d40 t/s"));
  Result two = run_cli("bench -m " + kStories + " --set kv_cache.dtype=f32,f16 -d 0,40 -r 1");
  CHECK(two.code == 1);
  CHECK_THAT(two.out, Contains("the A/B bench compares its variants at one --n-depth; got 2"));
  Result file = run_cli("bench -m " + kStories + " --set kv_cache.dtype=f32,f16 -d 40 -r 1 --prompt-file " +
                        std::string(SEMLINE_SOURCE_DIR) + "/tests/data/story.txt");
  CHECK(file.code == 1);
  CHECK_THAT(file.out, Contains("--prompt-file with --n-depth"));
}

TEST_CASE("bad input is one clear line and exit code 1") {
  fs::path d = temp_dir();
  {
    std::ofstream f(d / "trunc.gguf", std::ios::binary);
    std::ifstream in(kStories, std::ios::binary);
    std::string head(5000, '\0');
    in.read(head.data(), head.size());
    f.write(head.data(), head.size());
  }
  Result trunc = run_cli("inspect " + (d / "trunc.gguf").string());
  CHECK(trunc.code == 1);
  CHECK_THAT(trunc.out, StartsWith("error: ") && Contains("trunc.gguf"));
  Result run = run_cli("run -m " + (d / "trunc.gguf").string() + " -p hi");
  CHECK(run.code == 1);
  CHECK_THAT(run.out, StartsWith("error: ") && Contains("trunc.gguf"));
  {
    std::ofstream f(d / "bad.toml");
    f << "[model]\npath = \"" << kStories << "\"\n[stages]\nattention = { variant = \"flsh\" }\n";
  }
  Result cfg = run_cli("run -c " + (d / "bad.toml").string() + " -p hi");
  CHECK(cfg.code == 1);
  CHECK_THAT(cfg.out, Contains("bad.toml:4:") && Contains("did you mean 'flash'"));
  Result missing = run_cli("run -m " + (d / "nope.gguf").string() + " -p hi");
  CHECK(missing.code == 1);
  CHECK_THAT(missing.out, StartsWith("error: ") && Contains("nope.gguf"));
  CHECK(std::count(missing.out.begin(), missing.out.end(), '\n') == 1);
  fs::remove_all(d);
}

TEST_CASE("inspect and run on truncated or corrupted models: one error line, no signal, bounded time and memory") {
  // Cuts and overwritten bytes in the first 48 KiB of stories260K, where the header, the
  // tokenizer's metadata and the tensor table are. Each run has a 20 s timeout (a hang fails with
  // exit 124), and no run may have grown past 300 MiB resident (an allocation storm).
  fs::path d = temp_dir();
  std::string model;
  {
    std::ifstream in(kStories, std::ios::binary);
    model.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::mt19937 rng(semline::testing::seed());
  for (int i = 0; i < 24; ++i) {
    std::string bad = model;
    if (i % 2 == 0) {
      bad.resize(std::uniform_int_distribution<size_t>(0, model.size() - 1)(rng));
    } else {
      for (int k = 0; k < 8; ++k) bad[std::uniform_int_distribution<size_t>(0, 48 * 1024)(rng)] = static_cast<char>(rng());
    }
    const fs::path f = d / ("bad" + std::to_string(i) + ".gguf");
    std::ofstream(f, std::ios::binary).write(bad.data(), static_cast<std::streamsize>(bad.size()));
    for (const std::string& cmd : {"inspect " + f.string(), "run -n 4 -p hi -m " + f.string()}) {
      INFO("case " << i << " (SEMLINE_TEST_SEED=" << semline::testing::seed() << "): semline " << cmd);
      const Result r = run_cli_timed(cmd);
      CHECK(r.code != 124);
      if (r.code != 0) {
        CHECK(r.code == 1);
        CHECK_THAT(r.out, StartsWith("error: ") && Contains(f.filename().string()));
        CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
      }
    }
  }
  CHECK(children_peak_rss_mib() < 300);
  fs::remove_all(d);
}

TEST_CASE("semline bench times a prompt file in the A/B, and reports the drafts of a speculative variant") {
  const std::string story = std::string(SEMLINE_SOURCE_DIR) + "/tests/data/story.txt";
  Result r = run_cli("-q bench -m " + kStories + " --set speculative.proposer=none,ngram -p 48 -n 24 -r 1 -t 1 -o json" +
                     " --prompt-file " + story);
  REQUIRE(r.code == 0);
  const std::string json = r.out.substr(r.out.find('['));
  const size_t none = json.find("\"variant\": \"speculative.proposer=none\"");
  const size_t ngram = json.find("\"variant\": \"speculative.proposer=ngram\"");
  REQUIRE(none != std::string::npos);
  REQUIRE(ngram != std::string::npos);
  // The keys sort before "variant" within each object: the ngram object holds them, the first not.
  const size_t drafts = json.find("\"spec_draft_tokens\"");
  CHECK(drafts != std::string::npos);
  CHECK(drafts > none);
  CHECK(json.find("\"spec_draft_tokens\": 0,") == std::string::npos);  // the story repeats itself
  Result plain = run_cli("bench -m " + kStories + " -p 16 -n 4 -r 1 --prompt-file " + story);
  CHECK(plain.code != 0);
  CHECK_THAT(plain.out, Contains("--prompt-file is for the A/B bench"));
  Result draft_alone = run_cli("bench -m " + kStories + " -p 16 -n 4 -r 1 --draft " + kStories);
  CHECK(draft_alone.code != 0);
  CHECK_THAT(draft_alone.out, Contains("--draft is for the A/B bench"));
  // --draft with a grid of proposers: the draft variant drafts with it, its KL is 0.
  Result drafted = run_cli("-q bench -m " + kStories + " --draft " + kStories +
                           " --set speculative.proposer=none,draft -p 16 -n 24 -r 1 -t 1 -o json");
  REQUIRE(drafted.code == 0);
  CHECK_THAT(drafted.out, Contains("\"variant\": \"speculative.proposer=draft\"") && Contains("\"spec_draft_steps\"") &&
                              !Contains("\"spec_accepted_tokens\": 0,"));
  Result missing = run_cli("bench -m " + kStories + " --set speculative.proposer=none,ngram -p 16 -n 4 -r 1 --prompt-file /nonexistent.txt");
  CHECK(missing.code != 0);
  CHECK_THAT(missing.out, Contains("/nonexistent.txt: cannot read the prompt file"));
}

TEST_CASE("semline bench compares variants A/B: speed, cost and quality against the first, with a chart") {
  fs::path d = temp_dir();
  const std::string chart = (d / "ab.png").string();
  Result r = run_cli("bench -m " + kStories + " --set stages.attention.variant=dense,flash --set kv_cache.dtype=f32,f16" +
                     " -p 32 -n 8 -r 2 -t 1 -o json --text " + std::string(SEMLINE_SOURCE_DIR) +
                     "/tests/data/story.txt --window 64 --windows 2 --chart " + chart);
  REQUIRE(r.code == 0);
  const std::string json = r.out.substr(r.out.find('['));
  CHECK_THAT(json, Contains("\"variant\": \"attention.variant=dense kv_cache.dtype=f32\"") &&
                       Contains("\"variant\": \"attention.variant=flash kv_cache.dtype=f16\"") &&
                       Contains("\"tg_tps\"") && Contains("\"ttft_ms\"") && Contains("\"itl_ms\"") &&
                       Contains("\"peak_memory_mib\"") && Contains("\"flops_per_token\"") &&
                       Contains("\"perplexity\"") && Contains("\"mean_kl\"") && Contains("\"top1_agreement\"") &&
                       Contains("\"joules_per_token\""));
  // One row per variant, in the order given, each measured and scored on the same tokens.
  const auto rows = nlohmann::json::parse(json);
  REQUIRE(rows.size() == 4);
  const auto& base = rows[0];
  for (const auto& row : rows) {
    INFO(row.dump());
    CHECK(row["tg_tps"].get<double>() > 0);
    CHECK(row["pp_tps"].get<double>() > 0);
    CHECK(row["ttft_ms"].get<double>() > 0);
    CHECK(row["peak_memory_mib"].get<double>() > 0);
    CHECK(row["scored_tokens"] == base["scored_tokens"]);
    CHECK(row["flops_per_token"] == base["flops_per_token"]);  // the same arithmetic, however it is cut
  }
  // The reference against itself: nothing moved.
  CHECK(base["mean_kl"].get<double>() == 0.0);
  CHECK(base["top1_agreement"].get<double>() == 1.0);
  // Flash attention is exact: float rounding apart, the same distributions and perplexity.
  const auto& flash = rows[2];
  CHECK(flash["variant"] == "attention.variant=flash kv_cache.dtype=f32");
  CHECK(flash["mean_kl"].get<double>() < 1e-6);
  CHECK(flash["top1_agreement"].get<double>() >= 0.99);
  CHECK(flash["perplexity"].get<double>() == Approx(base["perplexity"].get<double>()).epsilon(1e-4));
  // An F16 cache really changes the numbers (and halves the cache's bytes), by little.
  for (int i : {1, 3}) {
    const auto& f16 = rows[i];
    INFO(f16["variant"]);
    CHECK(f16["mean_kl"].get<double>() > 0);
    CHECK(f16["mean_kl"].get<double>() < 1e-4);
    CHECK(f16["top1_agreement"].get<double>() >= 0.95);
    CHECK(f16["perplexity"].get<double>() == Approx(base["perplexity"].get<double>()).epsilon(1e-3));
    CHECK(f16["bytes_per_token"].get<double>() < base["bytes_per_token"].get<double>());
  }
  CHECK(fs::file_size(chart) > 1000);
  fs::remove_all(d);
}

TEST_CASE("slm4096: inspect and run read the Hugging Face folder, convert writes a GGUF that runs the same") {
  const std::string folder = kModels + "/gpt2/slm4096";
  Result inspect = run_cli("inspect " + folder + "/config.json");
  REQUIRE(inspect.code == 0);
  CHECK_THAT(inspect.out, Contains("Hugging Face GPT-2 folder") && Contains("arch       gpt2") &&
                              Contains("rope none") && Contains("ffn_act gelu") && Contains("tokenizer  char, 54 tokens") &&
                              Contains("blk.3.attn_qkv.weight") && Contains("[64, 192]"));

  const std::string prompt = "-p \"Q: Can you reason?\nA:\" -n 38";
  Result from_folder = run_cli("run -c " + std::string(SEMLINE_SOURCE_DIR) + "/configs/slm4096.toml " + prompt);
  REQUIRE(from_folder.code == 0);
  CHECK_THAT(from_folder.out, StartsWith("Q: Can you reason?\nA: I can produce the shape of reasoning.\n"));

  fs::path d = temp_dir();
  const std::string gguf = (d / "slm4096.gguf").string();
  REQUIRE(run_cli("convert " + folder + " -o " + gguf).code == 0);
  Result gi = run_cli("inspect " + gguf + " --no-tensors");
  CHECK_THAT(gi.out, Contains("GGUF v3") && Contains("gpt2.feed_forward_activation") && Contains("\"gelu\""));
  Result from_gguf = run_cli("run -c " + std::string(SEMLINE_SOURCE_DIR) + "/configs/slm4096.toml -m " + gguf + " " + prompt);
  REQUIRE(from_gguf.code == 0);
  CHECK(from_gguf.out.substr(0, from_gguf.out.find("prompt ")) == from_folder.out.substr(0, from_folder.out.find("prompt ")));

  Result bad = run_cli("convert " + folder + " --tokenizer x.bin -o " + gguf);
  CHECK(bad.code == 1);
  CHECK_THAT(bad.out, Contains("--tokenizer is for llama2.c checkpoints"));
  Result no_tok = run_cli("convert " + kModels + "/llama2c/stories260K.bin -o " + gguf);
  CHECK(no_tok.code == 1);
  CHECK_THAT(no_tok.out, Contains("needs --tokenizer"));
  fs::remove_all(d);
}

TEST_CASE("a Qwen2 Hugging Face folder: inspect, run and convert read it, and its GGUF runs the same text") {
  fs::path d = temp_dir();
  const std::string gguf = (d / "qwen2.gguf").string(), folder = (d / "Qwen2-tiny").string();
  REQUIRE(run_cli("synth --preset tiny --arch qwen2 --seed 16 -o " + gguf).code == 0);
  semline::testing::write_hf_folder(*semline::open_model_file(gguf), folder, 2);
  Result inspect = run_cli("inspect " + folder + " --no-tensors");
  REQUIRE(inspect.code == 0);
  CHECK_THAT(inspect.out, Contains("Hugging Face Qwen2ForCausalLM folder: 2 safetensors shards") &&
                              Contains("arch       qwen2") && Contains("tokenizer.json (SentencePiece BPE)"));
  const std::string prompt = " -p \"Once upon a time\" -n 12 --temp 0";
  Result from_folder = run_cli("run -m " + folder + prompt);
  REQUIRE(from_folder.code == 0);
  const std::string converted = (d / "converted.gguf").string();
  REQUIRE(run_cli("convert " + folder + " -o " + converted).code == 0);
  Result from_gguf = run_cli("run -m " + converted + prompt);
  REQUIRE(from_gguf.code == 0);
  auto text = [](const std::string& s) { return s.substr(0, s.find("prompt ")); };
  CHECK(text(from_gguf.out) == text(from_folder.out));
  CHECK(text(run_cli("run -m " + gguf + prompt).out) == text(from_folder.out));
  fs::remove_all(d);
}

TEST_CASE("sampler flags over a greedy config sample, --temp 0 is greedy, penalties given as flags still apply") {
  const std::string cfg = "run -c " + std::string(SEMLINE_SOURCE_DIR) + "/configs/stories260K.toml -p \"Once upon a time\" -n 30 ";
  const std::string story = "Once upon a time, there was a little girl named Lily.";
  auto text = [](const std::string& s) { return s.substr(0, s.find("prompt ")); };
  // The config's chain is [greedy]: a sampling flag switches to the sampling chain, as without one.
  Result sampled = run_cli(cfg + "--temp 1.0 --seed 1");
  REQUIRE(sampled.code == 0);
  CHECK_THAT(sampled.out, Contains("the config's sampler chain [\"greedy\"] lacks what the flags set; sampling with"));
  CHECK_THAT(text(sampled.out), !Contains(story));  // seed 1 draws "a little boy named Timmy"
  CHECK(text(run_cli(cfg + "--temp 1.0 --seed 1").out) == text(sampled.out));
  // --temp 0 is greedy, with or without a config: the known story, and other sampling flags noted.
  Result greedy = run_cli("run -m " + kStories + " -p \"Once upon a time\" -n 30 --temp 0 --top-k 5");
  REQUIRE(greedy.code == 0);
  CHECK_THAT(greedy.out, Contains(story) && Contains("--top-k: ignored, --temp 0 means greedy"));
  CHECK(text(greedy.out).find(story) != std::string::npos);
  CHECK(text(run_cli(cfg + "--temp 0").out) == text(greedy.out.substr(greedy.out.find("Once"))));
  // A penalty given with --temp 0 changes the greedy text (it runs before greedy).
  Result penalised = run_cli(cfg + "--temp 0 --repeat-penalty 1.5");
  REQUIRE(penalised.code == 0);
  CHECK(text(penalised.out) != text(run_cli(cfg + "--temp 0").out));
}

TEST_CASE("a grid over a stage's variant drops the parameters the new variant does not declare") {
  // The default config gives attention = { variant = "flash", block = 64 }; dense has no block.
  Result r = run_cli("bench -c " + std::string(SEMLINE_SOURCE_DIR) + "/configs/stories260K.toml" +
                     " --set stages.attention.variant=dense,flash -p 16 -n 4 -r 1 -t 1 -o json --text " +
                     std::string(SEMLINE_SOURCE_DIR) + "/tests/data/story.txt --window 32 --windows 1");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("variant attention.variant=dense: attention.block = 64 dropped, attention.dense.cpu "
                             "declares no such parameter"));
  CHECK_THAT(r.out, !Contains("variant attention.variant=flash: attention.block"));
  const auto rows = nlohmann::json::parse(r.out.substr(r.out.find('[')));
  REQUIRE(rows.size() == 2);
  CHECK(rows[1]["mean_kl"].get<double>() < 1e-6);
}

TEST_CASE("user plugins cannot knock out built-ins: a clashing key and a clashing name each cost one line") {
  const std::string dir = SEMLINE_TEST_PLUGIN_DIR;
  const std::string user = dir + "/libsemline-test-user-norms.so", shadow = dir + "/libsemline-test-shadow-samplers.so";
  Result r = run_cli_raw("SEMLINE_PLUGIN_PATH=" + user + ":" + shadow + " " + std::string(SEMLINE_BIN_DIR) +
                         "/semline run -m " + kStories + " -p \"Once upon a time\" -n 24 2>&1");
  REQUIRE(r.code == 0);
  // The built-in norm and greedy run: the known story.
  CHECK_THAT(r.out, Contains("Once upon a time, there was a little girl named Lily."));
  CHECK_THAT(r.out, Contains("warning: norm.rms.cpu: registered by plugin 'cpu' (") &&
                        Contains(") and by plugin 'test-user-norms' (" + user + "); the first loaded keeps it"));
  CHECK_THAT(r.out, Contains("error: " + shadow + ": plugin 'samplers' is already loaded from ") &&
                        Contains("libsemline-samplers.so; plugin names must be unique"));
  // The rest of the user's plugin is there.
  Result listed = run_cli_raw("SEMLINE_PLUGIN_PATH=" + user + " " + std::string(SEMLINE_BIN_DIR) + "/semline plugins 2>&1");
  REQUIRE(listed.code == 0);
  CHECK_THAT(listed.out, Contains("sampler user_lowest_id@any"));
}

TEST_CASE("a plugin whose static initialiser throws stops semline with one line naming the file") {
  const std::string file = std::string(SEMLINE_TEST_PLUGIN_DIR) + "/libsemline-test-static-throws.so";
  Result r = run_cli_raw("SEMLINE_PLUGIN_PATH=" + file + " " + std::string(SEMLINE_BIN_DIR) + "/semline plugins 2>&1");
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Contains("error: " + file + ": a static initialiser of the plugin threw (deliberate failure in a "
                             "static initialiser)"));
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
}

TEST_CASE("semline chat answers each line on the engine, the conversation kept, /reset and /quit understood") {
  Result r = run_cli_raw("printf 'Once upon a time\\n/reset\\nOnce upon a time\\n/quit\\nnever read\\n' | " +
                         std::string(SEMLINE_BIN_DIR) + "/semline chat -c " + std::string(SEMLINE_SOURCE_DIR) +
                         "/configs/stories260K.toml -n 12 2>/dev/null");
  REQUIRE(r.code == 0);
  // The same first turn twice (after /reset), nothing after /quit.
  const std::string answer = ", there was a little girl named Lily.";
  CHECK(r.out.find(answer) != std::string::npos);
  CHECK(r.out.find(answer, r.out.find(answer) + 1) != std::string::npos);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 2);
  Result bad = run_cli("chat -c " + std::string(SEMLINE_SOURCE_DIR) + "/configs/stories260K.toml --chat-template chatm");
  CHECK(bad.code == 1);
  CHECK_THAT(bad.out, Contains("--chat-template chatm: no such template (did you mean 'chatml'?); templates: plain, chatml"));
}
