// The whole line on the vulkan backend, through the plugins of this build: stories260K logits
// against the float64 reference, greedy text against the cpu line, stations split between the
// vulkan and cpu backends, a synthetic GQA model in every weight dtype, and `semline bench`.
//
// Tolerance: 1e-5 of the row's largest logit, as for the cpu line (F32 arithmetic, weights
// dequantised exactly); 2e-3 with an F16 KV cache.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/compare.h"
#include "common/reference_llama.h"
#include "core/engine/generator.h"
#include "core/model/synth.h"
#include "vulkan/line_fixtures.h"
#include "vulkan/vulkan_test_util.h"

using namespace semline;
using semline::vktest::all_logits;
using semline::vktest::Line;
namespace fs = std::filesystem;

namespace {

const std::string kStories = std::string(SEMLINE_MODELS_DIR) + "/gguf/stories260K.gguf";

using testing::rel_err;

std::vector<std::vector<double>> reference_logits(const ModelView& model, const std::vector<int32_t>& tokens) {
  testing::ReferenceLlama ref(model, testing::read_llama_hparams(model));
  std::vector<std::vector<double>> want;
  for (int32_t t : tokens) want.push_back(ref.step(t));
  return want;
}

}  // namespace

TEST_CASE("stories260K on vulkan: logits match the float64 reference however the steps are cut (needs a Vulkan "
          "device)",
          "[line]") {
  SEMLINE_REQUIRE_VULKAN();
  Line line(kStories, "vulkan", "");
  REQUIRE(line.graph.backends == std::vector<std::string>{"vulkan"});
  const std::vector<int32_t> tokens = line.pipeline->tokenizer().encode(
      "Once upon a time, there was a big dog. It liked to run and play with the ball.", true);
  REQUIRE(tokens.size() > 20);
  const auto want = reference_logits(*line.model, tokens);
  for (int chunk : {1, 5, 64}) {  // decode (matrix-vector), small steps, one prefill (tiled)
    INFO("chunk " << chunk);
    auto got = all_logits(*line.pipeline, tokens, chunk);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("position " << i);
      CHECK(rel_err(got[i], want[i]) <= 1e-5);
    }
  }
}

TEST_CASE("stories260K on vulkan: dense and flash attention and an F16 KV cache agree with the reference (needs a "
          "Vulkan device)",
          "[line]") {
  SEMLINE_REQUIRE_VULKAN();
  std::vector<int32_t> tokens;
  std::vector<std::vector<double>> want;
  for (const char* extra : {"[stages]\nattention = { variant = \"dense\" }\n",
                            "[stages]\nattention = { variant = \"flash\", block = 4 }\n",
                            "[kv_cache]\ndtype = \"f16\"\nblock_tokens = 8\n"}) {
    INFO(extra);
    Line line(kStories, "vulkan", extra);
    if (tokens.empty()) {
      tokens = line.pipeline->tokenizer().encode("The little cat sat on the mat and looked at the sun.", true);
      want = reference_logits(*line.model, tokens);
    }
    auto got = all_logits(*line.pipeline, tokens, 7);
    const double tol = std::string(extra).find("f16") != std::string::npos ? 2e-3 : 1e-5;
    for (size_t i = 0; i < want.size(); ++i) CHECK(rel_err(got[i], want[i]) <= tol);
  }
}

TEST_CASE("stories260K on vulkan: greedy text is the cpu line's, token for token (needs a Vulkan device)", "[line]") {
  SEMLINE_REQUIRE_VULKAN();
  const char* greedy = "[stages]\nsampler = { chain = [\"greedy\"] }\n";
  Line vk(kStories, "vulkan", greedy);
  Line cpu(kStories, "cpu", greedy);
  REQUIRE(cpu.graph.backends == std::vector<std::string>{"cpu"});
  const std::vector<int32_t> prompt = vk.pipeline->tokenizer().encode("Once upon a time", true);
  GenerateOptions go;
  go.max_tokens = 80;
  go.stop_at_eos = false;
  const GenerateResult a = generate(*vk.pipeline, prompt, go);
  const GenerateResult b = generate(*cpu.pipeline, prompt, go);
  CHECK(("Once upon a time" + a.text)
            .rfind("Once upon a time, there was a little girl named Lily. She loved to play outside in the park.", 0) ==
        0);
  CHECK(a.tokens == b.tokens);
  CHECK(a.text == b.text);
}

TEST_CASE("mixed placement: stations on vulkan and cpu, activations moved through host memory (needs a Vulkan "
          "device)",
          "[line]") {
  SEMLINE_REQUIRE_VULKAN();
  std::vector<int32_t> tokens;
  std::vector<std::vector<double>> want;
  struct Split {
    const char* backend;
    const char* config;
    StageKind kind;
    const char* expect;
  };
  for (const Split& s :
       {Split{"vulkan", "[stages]\nffn = { variant = \"dense\", backend = \"cpu\" }\n", StageKind::Ffn, "cpu"},
        Split{"cpu",
              "[stages]\nattention = { variant = \"flash\", backend = \"vulkan\" }\nhead = { variant = \"dense\", "
              "backend = \"vulkan\" }\n",
              StageKind::Attention, "vulkan"},
        Split{"vulkan", "[[stages.layers]]\nrange = \"1-3\"\nattention = { variant = \"dense\", backend = \"cpu\" }\n",
              StageKind::Embedding, "vulkan"}}) {
    INFO(s.backend << " with " << s.config);
    Line line(kStories, s.backend, s.config);
    REQUIRE(line.graph.backends.size() == 2);
    CHECK(line.backend_of(s.kind) == s.expect);
    if (tokens.empty()) {
      tokens = line.pipeline->tokenizer().encode("Tom had a red car. He drove it to the park.", true);
      want = reference_logits(*line.model, tokens);
    }
    for (int chunk : {1, 16}) {
      auto got = all_logits(*line.pipeline, tokens, chunk);
      for (size_t i = 0; i < want.size(); ++i) CHECK(rel_err(got[i], want[i]) <= 1e-5);
    }
  }
}

TEST_CASE("two sequences in one vulkan step give the same logits as each alone (needs a Vulkan device)", "[line]") {
  SEMLINE_REQUIRE_VULKAN();
  Line line(kStories, "vulkan", "", 2);
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
  auto logits = p.forward(batch);
  const size_t v = logits.size() / tokens.size();
  std::vector<const std::vector<float>*> by_row;
  size_t ia = 0, ib = 0;
  for (size_t r = 0; r < tokens.size(); ++r) by_row.push_back(seq[r] == 0 ? &alone_a[ia++] : &alone_b[ib++]);
  for (size_t o = 0; o < rows.size(); ++o) {
    INFO("output " << o << " (batch row " << rows[o] << ")");
    const auto& want = *by_row[rows[o]];
    REQUIRE(want.size() == v);
    double worst = 0;
    for (size_t j = 0; j < v; ++j) worst = std::max(worst, std::fabs(static_cast<double>(logits[o * v + j]) - want[j]));
    CHECK(worst <= 1e-4);  // every logit
  }
}

TEST_CASE("a synthetic llama with GQA matches the reference on vulkan in every weight dtype (needs a Vulkan device)",
          "[line]") {
  SEMLINE_REQUIRE_VULKAN();
  const fs::path dir = fs::temp_directory_path() / ("semline-vulkan-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (DType dtype : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0}) {
    INFO(dtype_name(dtype));
    SynthSpec s = synth_preset("tiny");
    s.dtype = dtype;
    s.seed = 11;
    const fs::path path = dir / (std::string("tiny-") + dtype_name(dtype) + ".gguf");
    synth_write(s, path);
    Line line(path.string(), "vulkan", "");
    REQUIRE(line.graph.hp.n_head_kv < line.graph.hp.n_head);
    const std::vector<int32_t> tokens = {1, 17, 300, 42, 99, 7, 260, 5, 5, 5, 123, 77};
    const auto want = reference_logits(*line.model, tokens);
    for (int chunk : {1, 12}) {
      auto got = all_logits(*line.pipeline, tokens, chunk);
      for (size_t i = 0; i < tokens.size(); ++i) CHECK(rel_err(got[i], want[i]) <= 1e-5);
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("semline bench runs stories260K on the vulkan backend (needs a Vulkan device)", "[line]") {
  SEMLINE_REQUIRE_VULKAN();
  const std::string cmd = std::string(SEMLINE_BIN_DIR) + "/semline bench -m " + kStories +
                          " --set runtime.backend=vulkan -p 16 -n 8 -r 1 -o csv 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  INFO(out);
  CHECK(status == 0);
  CHECK(out.find(",vulkan,") != std::string::npos);
  CHECK(out.find(",16,0,") != std::string::npos);  // pp16
  CHECK(out.find(",0,8,") != std::string::npos);   // tg8
}
