// End to end on every backend: the real stories260K model and a synthetic llama with GQA in every
// weight dtype through the plugins of this build, against the float64 reference pass — logits,
// greedy text, every way of cutting the same work into steps, and two sequences in one step.
//
// Tolerance: 1e-5 of the row's largest logit (F32 arithmetic); 2e-3 with an F16 KV cache; where a
// backend rounds the input of Q8_0 / Q4_0 products to 8 bits (the cpu), the reference rounds the
// same inputs and the bound is 2e-2 (a value the backend's float arithmetic puts across a rounding
// step somewhere in the model moves the logits by up to ~1%).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/engine/generator.h"
#include "core/model/synth.h"
#include "line/line_util.h"
#include "stations/targets.h"

using namespace semline;
using namespace semline::linetest;
using namespace semline::stationtest;
namespace fs = std::filesystem;

namespace {

const fs::path kStories = fs::path(SEMLINE_MODELS_DIR) / "gguf/stories260K.gguf";

}  // namespace

TEMPLATE_TEST_CASE("stories260K logits match the float64 reference at every position, however the steps are cut",
                   "[line]", SEMLINE_STATION_TARGETS) {
  REQUIRE_TARGET();
  Line line(kStories, on_backend(TestType::kName));
  REQUIRE(line.graph.backends == std::vector<std::string>{TestType::kName});
  const std::vector<int32_t> tokens = line.pipeline->tokenizer().encode(
      "Once upon a time, there was a big dog. It liked to run and play with the ball.", true, false);
  REQUIRE(tokens.size() > 20);
  const auto want = llama_reference(*line.model, tokens);
  for (int chunk : {1, 5, 64}) {  // decode (matrix-vector), small steps, one prefill (tiled)
    INFO("chunk " << chunk);
    CHECK(worst_rel_err(line.logits(tokens, chunk), want) <= 1e-5);
  }
}

TEMPLATE_TEST_CASE("dense attention, flash attention, per-layer variants and an F16 KV cache agree with the reference",
                   "[line]", SEMLINE_STATION_TARGETS) {
  REQUIRE_TARGET();
  std::vector<int32_t> tokens;
  std::vector<std::vector<double>> want;
  for (const char* extra : {"[stages]\nattention = { variant = \"dense\" }\n",
                            "[stages]\nattention = { variant = \"flash\", block = 4 }\n",
                            "[[stages.layers]]\nrange = \"0-2\"\nattention = { variant = \"dense\" }\n",
                            "[kv_cache]\ndtype = \"f16\"\nblock_tokens = 8\n"}) {
    INFO(extra);
    Line line(kStories, on_backend(TestType::kName) + extra);
    if (tokens.empty()) {
      tokens = line.pipeline->tokenizer().encode("The little cat sat on the mat and looked at the sun.", true, false);
      want = llama_reference(*line.model, tokens);
    }
    const double tol = std::string(extra).find("f16") != std::string::npos ? 2e-3 : 1e-5;
    CHECK(worst_rel_err(line.logits(tokens, 7), want) <= tol);
  }
}

TEMPLATE_TEST_CASE("greedy text from 'Once upon a time' is the known story and the reference's argmax for 200 tokens",
                   "[line]", SEMLINE_STATION_TARGETS) {
  REQUIRE_TARGET();
  Line line(kStories, on_backend(TestType::kName) + "[stages]\nsampler = { chain = [\"greedy\"] }\n");
  const std::vector<int32_t> prompt = line.pipeline->tokenizer().encode("Once upon a time", true, false);
  GenerateOptions go;
  go.max_tokens = 200;
  go.stop_at_eos = false;
  const GenerateResult r = generate(*line.pipeline, prompt, go);
  REQUIRE(r.tokens.size() == 200);
  CHECK(("Once upon a time" + r.text)
            .rfind("Once upon a time, there was a little girl named Lily. She loved to play outside in the park.", 0) ==
        0);
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

TEMPLATE_TEST_CASE("two sequences in one step give the same logits as each alone, output rows in any order", "[line]",
                   SEMLINE_STATION_TARGETS) {
  REQUIRE_TARGET();
  Line line(kStories, on_backend(TestType::kName), 2);
  Pipeline& p = *line.pipeline;
  const std::vector<int32_t> a = p.tokenizer().encode("Tom had a red car.", true, false);
  const std::vector<int32_t> b = p.tokenizer().encode("The bird sang a song in the tree.", true, false);
  const auto alone_a = line.logits(a, 64), alone_b = line.logits(b, 64);

  const int32_t sa = p.kv().new_sequence(), sb = p.kv().new_sequence();
  p.kv().reserve(sa, static_cast<int32_t>(a.size()));
  p.kv().reserve(sb, static_cast<int32_t>(b.size()));
  SeqView views[2] = {p.kv().view(sa), p.kv().view(sb)};
  std::vector<int32_t> tokens, pos, seq, rows;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {  // interleaved rows
    if (i < a.size()) tokens.push_back(a[i]), pos.push_back(static_cast<int32_t>(i)), seq.push_back(0);
    if (i < b.size()) tokens.push_back(b[i]), pos.push_back(static_cast<int32_t>(i)), seq.push_back(1);
  }
  for (size_t i = 0; i < tokens.size(); ++i) rows.push_back(static_cast<int32_t>(tokens.size() - 1 - i));
  Batch batch;
  batch.n_tokens = static_cast<int32_t>(tokens.size());
  batch.tokens = tokens.data();
  batch.positions = pos.data();
  batch.seq = seq.data();
  batch.n_seqs = 2;
  batch.seqs = views;
  batch.n_outputs = batch.n_tokens;
  batch.output_rows = rows.data();  // descending: the head gathers rows out of order
  const auto logits = p.forward(batch);
  const size_t v = logits.size() / tokens.size();
  std::vector<const std::vector<float>*> by_row;
  size_t ia = 0, ib = 0;
  for (size_t r = 0; r < tokens.size(); ++r) by_row.push_back(seq[r] == 0 ? &alone_a[ia++] : &alone_b[ib++]);
  for (size_t o = 0; o < rows.size(); ++o) {
    INFO("output " << o << " (batch row " << rows[o] << ", sequence " << seq[rows[o]] << ")");
    const auto& want = *by_row[rows[o]];
    REQUIRE(want.size() == v);
    double worst = 0;
    for (size_t j = 0; j < v; ++j) worst = std::max(worst, std::fabs(static_cast<double>(logits[o * v + j]) - want[j]));
    CHECK(worst <= 1e-4);  // every logit
  }
}

TEMPLATE_TEST_CASE("a synthetic llama with GQA matches the float64 reference in every weight dtype", "[line]",
                   SEMLINE_STATION_TARGETS) {
  REQUIRE_TARGET();
  const std::vector<int32_t> tokens = {1, 17, 300, 42, 99, 7, 260, 5, 5, 5, 123, 77};
  for (DType dtype : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0}) {
    INFO(dtype_name(dtype));
    SynthSpec s = synth_preset("tiny");
    s.dtype = dtype;
    s.seed = 11;
    const fs::path path = scratch(std::string("tiny-") + dtype_name(dtype) + ".gguf");
    synth_write(s, path);
    Line line(path, on_backend(TestType::kName));
    REQUIRE(line.graph.hp.n_head_kv < line.graph.hp.n_head);
    testing::ReferenceOptions opt;
    opt.quantize_inputs = TestType::quantized_input(dtype);
    const auto want = llama_reference(*line.model, tokens, opt);
    for (int chunk : {1, 12}) {
      INFO("chunk " << chunk);
      const double worst = worst_rel_err(line.logits(tokens, chunk), want);
      CHECK(worst <= (opt.quantize_inputs ? 2e-2 : 1e-5));
    }
  }
  fs::remove_all(scratch("").parent_path());
}

TEMPLATE_TEST_CASE("a Q8_0 KV cache: a synthetic llama against the reference that rounds its keys and values alike",
                   "[line]", SEMLINE_STATION_TARGETS) {
  REQUIRE_TARGET();
  const std::vector<int32_t> tokens = {1, 17, 300, 42, 99, 7, 260, 5, 5, 5, 123, 77, 64, 3, 9, 31};
  SynthSpec s = synth_preset("tiny");
  s.heads = 64 / TestType::kQ8KvHead;  // heads of 32 values, whole Q8_0 blocks (vulkan: 64, whole words)
  s.kv_heads = 1;
  s.seed = 12;
  const fs::path path = scratch("tiny-hd32.gguf");
  synth_write(s, path);
  const std::string q8 = "[kv_cache]\ndtype = \"q8_0\"\nblock_tokens = 4\n";
  SynthSpec narrow = synth_preset("tiny");  // heads of 16
  synth_write(narrow, scratch("tiny-hd16.gguf"));
  CHECK_THAT(line_error(scratch("tiny-hd16.gguf"), on_backend(TestType::kName) + q8),
             Catch::Contains("kv_cache.dtype = q8_0 stores a head's keys and values in blocks of 32; this model's head "
                             "size is 16 (use f16 or f32)"));
  Line line(path, on_backend(TestType::kName) + q8);
  testing::ReferenceOptions opt;
  opt.kv_cache = DType::Q8_0;
  const auto want = llama_reference(*line.model, tokens, opt);
  const auto exact = llama_reference(*line.model, tokens);
  for (int chunk : {1, 5, 16}) {
    INFO("chunk " << chunk);
    // A key or value the stage's float arithmetic puts across a rounding step from the
    // reference's moves the logits by up to one 8-bit step of its block (test_attention.cpp).
    CHECK(worst_rel_err(line.logits(tokens, chunk), want) <= 2e-2);
  }
  CHECK(worst_rel_err(line.logits(tokens, 1), exact) > worst_rel_err(line.logits(tokens, 1), want));
  fs::remove_all(scratch("").parent_path());
}

TEST_CASE("[backends.<name>] tables set backend parameters, checked against the backend's schema") {
  Line ok(kStories, "[backends.cpu]\nthreads = 1\n");
  CHECK(ok.pipeline->tokenizer().n_vocab() == 512);
  CHECK_THAT(line_error(kStories, "[backends.cpu]\nthread = 1\n"),
             Catch::Contains("line.toml:7:") && Catch::Contains("unknown parameter 'thread'") &&
                 Catch::Contains("did you mean 'threads'"));
  CHECK_THAT(line_error(kStories, "[backends.cpu]\nprefetch = \"sofware\"\n"),
             Catch::Contains("line.toml:7:") && Catch::Contains("backends.cpu: prefetch = 'sofware' is not valid") &&
                 Catch::Contains("did you mean 'software'") && Catch::Contains("choices: auto, software, hardware"));
  CHECK_THAT(line_error(kStories, "[backends.cpu]\nthreads = -3\n"),
             Catch::Contains("line.toml:7:") &&
                 Catch::Contains("backends.cpu: threads = -3 is out of range; expected an integer in "));
}
