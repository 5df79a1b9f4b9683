// End to end: the real stories260K model through the plugins of this build, against the float64
// reference pass — logits, greedy text, and every way of cutting the same work into steps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "common/compare.h"
#include "common/pipeline_logits.h"
#include "common/reference_llama.h"
#include "common/test_plugins.h"
#include "core/config/config.h"
#include "core/engine/generator.h"
#include "core/engine/pipeline.h"
#include "core/graph/graph.h"
#include "core/model/gguf.h"

using namespace semline;

namespace {

const std::string kStories = std::string(SEMLINE_MODELS_DIR) + "/gguf/stories260K.gguf";

Config config_with(const std::string& extra) {
  return parse_config("[model]\npath = \"" + kStories + "\"\n[runtime]\nthreads = 2\ncontext = 512\n" + extra, "test.toml");
}

struct Line {
  Config config;
  std::unique_ptr<gguf::GgufFile> model;
  PipelineGraph graph;
  std::unique_ptr<Pipeline> pipeline;
  explicit Line(const std::string& extra, int32_t max_seqs = 1)
      : config(config_with(extra)), model(gguf::GgufFile::open(kStories)) {
    graph = build_graph(config, *model, testing::built_plugins());
    PipelineOptions opt = pipeline_options(config);
    opt.kv.max_seqs = max_seqs;
    pipeline = std::make_unique<Pipeline>(graph, *model, testing::built_plugins(), opt);
  }
};

using testing::all_logits;
using testing::rel_err;

}  // namespace

TEST_CASE("stories260K logits match the float64 reference at every position, however the steps are cut") {
  Line line("[stages]\nattention = { variant = \"flash\", block = 16 }\n");
  std::vector<int32_t> tokens = line.pipeline->tokenizer().encode("Once upon a time, there was a big dog. It liked to run and play with the ball.", true);
  REQUIRE(tokens.size() > 20);
  testing::ReferenceLlama ref(*line.model, testing::read_llama_hparams(*line.model));
  std::vector<std::vector<double>> want;
  for (int32_t t : tokens) want.push_back(ref.step(t));
  for (int chunk : {1, 5, 64}) {
    INFO("chunk " << chunk);
    auto got = all_logits(*line.pipeline, tokens, chunk);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("position " << i);
      CHECK(rel_err(got[i], want[i]) <= 1e-5);
    }
  }
}

TEST_CASE("dense attention, flash attention and an F16 KV cache agree with the reference") {
  std::vector<int32_t> tokens;
  std::vector<std::vector<double>> want;
  for (const char* extra : {"[stages]\nattention = { variant = \"dense\" }\n",
                            "[stages]\nattention = { variant = \"flash\", block = 4 }\n",
                            "[[stages.layers]]\nrange = \"0-2\"\nattention = { variant = \"dense\" }\n",
                            "[kv_cache]\ndtype = \"f16\"\nblock_tokens = 8\n"}) {
    INFO(extra);
    Line line(extra);
    if (tokens.empty()) {
      tokens = line.pipeline->tokenizer().encode("The little cat sat on the mat and looked at the sun.", true);
      testing::ReferenceLlama ref(*line.model, testing::read_llama_hparams(*line.model));
      for (int32_t t : tokens) want.push_back(ref.step(t));
    }
    auto got = all_logits(*line.pipeline, tokens, 7);
    const double tol = std::string(extra).find("f16") != std::string::npos ? 2e-3 : 1e-5;
    for (size_t i = 0; i < want.size(); ++i) CHECK(rel_err(got[i], want[i]) <= tol);
  }
}

TEST_CASE("greedy text from 'Once upon a time' is the known story and matches the reference for 200 tokens") {
  Line line("[stages]\nsampler = { chain = [\"greedy\"] }\n");
  std::vector<int32_t> prompt = line.pipeline->tokenizer().encode("Once upon a time", true);
  GenerateOptions go;
  go.max_tokens = 200;
  go.stop_at_eos = false;
  GenerateResult r = generate(*line.pipeline, prompt, go);
  REQUIRE(r.tokens.size() == 200);
  CHECK(("Once upon a time" + r.text).rfind(
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.", 0) == 0);

  testing::ReferenceLlama ref(*line.model, testing::read_llama_hparams(*line.model));
  std::vector<double> logits;
  for (int32_t t : prompt) logits = ref.step(t);
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    const int32_t want = testing::argmax(logits);
    INFO("token " << i);
    REQUIRE(r.tokens[i] == want);
    logits = ref.step(want);
  }
}

TEST_CASE("two sequences in one batch give the same logits as each alone") {
  Line line("", 2);
  Pipeline& p = *line.pipeline;
  std::vector<int32_t> a = p.tokenizer().encode("Tom had a red car.", true);
  std::vector<int32_t> b = p.tokenizer().encode("The bird sang a song in the tree.", true);
  auto alone_a = all_logits(p, a, 64), alone_b = all_logits(p, b, 64);

  const int32_t sa = p.kv().new_sequence(), sb = p.kv().new_sequence();
  p.kv().reserve(sa, static_cast<int32_t>(a.size()));
  p.kv().reserve(sb, static_cast<int32_t>(b.size()));
  SeqView views[2] = {p.kv().view(sa), p.kv().view(sb)};
  std::vector<int32_t> tokens, pos, seq, rows;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {  // interleaved rows
    if (i < a.size()) tokens.push_back(a[i]), pos.push_back(static_cast<int32_t>(i)), seq.push_back(0);
    if (i < b.size()) tokens.push_back(b[i]), pos.push_back(static_cast<int32_t>(i)), seq.push_back(1);
  }
  for (size_t i = 0; i < tokens.size(); ++i) rows.push_back(static_cast<int32_t>(i));
  Batch batch;
  batch.n_tokens = static_cast<int32_t>(tokens.size());
  batch.tokens = tokens.data();
  batch.positions = pos.data();
  batch.seq = seq.data();
  batch.n_seqs = 2;
  batch.seqs = views;
  batch.n_outputs = batch.n_tokens;
  batch.output_rows = rows.data();
  auto logits = p.forward(batch);
  const size_t v = logits.size() / tokens.size();
  size_t ia = 0, ib = 0;
  for (size_t r = 0; r < tokens.size(); ++r) {
    INFO("batch row " << r << ", sequence " << seq[r]);
    const auto& want = seq[r] == 0 ? alone_a[ia++] : alone_b[ib++];
    REQUIRE(want.size() == v);
    double worst = 0;
    for (size_t j = 0; j < v; ++j) worst = std::max(worst, std::fabs(static_cast<double>(logits[r * v + j]) - want[j]));
    CHECK(worst <= 1e-4);  // every logit
  }
}

TEST_CASE("[backends.<name>] tables set backend parameters, checked against the backend's schema") {
  Line ok("[backends.cpu]\nthreads = 1\n");
  CHECK(ok.pipeline->tokenizer().n_vocab() == 512);
  try {
    Line bad("[backends.cpu]\nthread = 1\n");
    FAIL("a misspelt backend parameter was accepted");
  } catch (const Error& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("test.toml:7:") && Catch::Contains("unknown parameter 'thread'") &&
                                          Catch::Contains("did you mean 'threads'"));
  }
  try {
    Line bad("[backends.cpu]\nprefetch = \"sofware\"\n");
    FAIL("a backend parameter outside its choices was accepted");
  } catch (const Error& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("test.toml:7:") && Catch::Contains("backends.cpu: prefetch = 'sofware' is not valid") &&
                                          Catch::Contains("did you mean 'software'") &&
                                          Catch::Contains("choices: auto, software, hardware"));
  }
  try {
    Line bad("[backends.cpu]\nthreads = -3\n");
    FAIL("a backend parameter out of its range was accepted");
  } catch (const Error& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("test.toml:7:") && Catch::Contains("backends.cpu: threads = -3 is out of range; expected an integer in "));
  }
}
