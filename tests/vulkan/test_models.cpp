// GPT-2 and Mixtral on the vulkan backend, through the plugins of this build: slm4096 (read from
// its Hugging Face folder) against the float64 GPT-2 reference and the cpu line's greedy text,
// with every station on vulkan and split between vulkan and cpu; a synthetic Mixtral in every
// weight dtype against the float64 llama reference with its MoE layers.
//
// Tolerance: 1e-5 of the row's largest logit for every weight dtype (F32 arithmetic, weights
// dequantised exactly, as test_line.cpp says).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/compare.h"
#include "common/reference_gpt2.h"
#include "common/reference_llama.h"
#include "core/engine/generator.h"
#include "core/model/synth.h"
#include "vulkan/line_fixtures.h"
#include "vulkan/vulkan_test_util.h"

using namespace semline;
using namespace semline::vktest;
namespace fs = std::filesystem;

namespace {

const std::string kSlm = std::string(SEMLINE_MODELS_DIR) + "/gpt2/slm4096";

// slm4096's first 128 training characters, one token each.
std::vector<int32_t> corpus_tokens(Line& line) {
  std::ifstream f(kSlm + "/corpus.txt", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(f)), {});
  REQUIRE(text.size() >= 128);
  std::vector<int32_t> tokens = line.pipeline->tokenizer().encode(text.substr(0, 128), true);
  REQUIRE(tokens.size() == 128);
  return tokens;
}

std::vector<std::vector<double>> gpt2_reference(const ModelView& model, const std::vector<int32_t>& tokens) {
  testing::ReferenceGpt2 ref(model, testing::read_gpt2_hparams(model));
  std::vector<std::vector<double>> want;
  for (int32_t t : tokens) want.push_back(ref.step(t));
  return want;
}

void check_logits(Pipeline& p, const std::vector<int32_t>& tokens, const std::vector<std::vector<double>>& want,
                  const std::vector<int>& chunks) {
  for (int chunk : chunks) {
    INFO("chunk " << chunk);
    auto got = all_logits(p, tokens, chunk);
    REQUIRE(got.size() == want.size());
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, rel_err(got[i], want[i]));
    CHECK(worst <= 1e-5);
  }
}

}  // namespace

TEST_CASE("slm4096 on vulkan: logits match the float64 GPT-2 reference at every position, flash and dense (needs a "
          "Vulkan device)",
          "[line][gpt2]") {
  SEMLINE_REQUIRE_VULKAN();
  std::vector<int32_t> tokens;
  std::vector<std::vector<double>> want;
  // Flash: decode (matrix-vector products), steps of 16 and one prefill (tiled products); dense:
  // steps of 5 (multi-row matrix-vector) and the prefill. Tiled products are slow on llvmpipe.
  struct Variant {
    const char* config;
    std::vector<int> chunks;
  };
  for (const Variant& v : {Variant{"[stages]\nattention = { variant = \"flash\", block = 16 }\n", {1, 16, 128}},
                           Variant{"[stages]\nattention = { variant = \"dense\" }\n", {5, 128}}}) {
    INFO(v.config);
    Line line(kSlm, "vulkan", v.config);
    REQUIRE(line.graph.backends == std::vector<std::string>{"vulkan"});
    CHECK(line.graph.blocks[0][0].first.impl->entry.variant == "layer");
    CHECK(line.graph.blocks[0][1].second.impl->entry.variant == "dense");
    if (tokens.empty()) {
      tokens = corpus_tokens(line);
      want = gpt2_reference(*line.model, tokens);
    }
    check_logits(*line.pipeline, tokens, want, v.chunks);
  }
}

TEST_CASE("slm4096 on vulkan: greedy text is the cpu line's, token for token (needs a Vulkan device)", "[line][gpt2]") {
  SEMLINE_REQUIRE_VULKAN();
  const std::string prompt = "Q: Can you reason?\nA:", expected = " I can produce the shape of reasoning.";
  const char* greedy = "[stages]\nsampler = { chain = [\"greedy\"] }\n";
  Line vk(kSlm, "vulkan", greedy), cpu(kSlm, "cpu", greedy);
  REQUIRE(cpu.graph.backends == std::vector<std::string>{"cpu"});
  GenerateOptions go;
  go.max_tokens = static_cast<int32_t>(expected.size());
  const GenerateResult a = generate(*vk.pipeline, vk.pipeline->tokenizer().encode(prompt, true), go);
  const GenerateResult b = generate(*cpu.pipeline, cpu.pipeline->tokenizer().encode(prompt, true), go);
  CHECK(a.text == expected);
  CHECK(a.tokens == b.tokens);
}

TEST_CASE("slm4096 split between vulkan and cpu: activations move through host memory, logits still match (needs a "
          "Vulkan device)",
          "[line][gpt2]") {
  SEMLINE_REQUIRE_VULKAN();
  struct Split {
    const char* backend;
    const char* config;
    StageKind kind;
    const char* expect;
  };
  std::vector<int32_t> tokens;
  std::vector<std::vector<double>> want;
  for (const Split& s :
       {Split{"vulkan", "[stages]\nffn = { variant = \"dense\", backend = \"cpu\" }\n", StageKind::Ffn, "cpu"},
        Split{"cpu",
              "[stages]\nattention = { variant = \"flash\", backend = \"vulkan\" }\nnorm = { variant = \"layer\", "
              "backend = \"vulkan\" }\n",
              StageKind::Attention, "vulkan"}}) {
    INFO(s.backend << " with " << s.config);
    Line line(kSlm, s.backend, s.config);
    REQUIRE(line.graph.backends.size() == 2);
    CHECK(line.backend_of(s.kind) == s.expect);
    if (tokens.empty()) {
      tokens = corpus_tokens(line);
      tokens.resize(48);  // the first 48 characters: the split is what is tested
      want = gpt2_reference(*line.model, tokens);
    }
    check_logits(*line.pipeline, tokens, want, {1, 16});
  }
}

TEST_CASE("a synthetic Mixtral on vulkan runs ffn/moe and matches the float64 reference in every weight dtype (needs "
          "a Vulkan device)",
          "[line][moe]") {
  SEMLINE_REQUIRE_VULKAN();
  const fs::path dir = fs::temp_directory_path() / ("semline-vulkan-moe-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::vector<int32_t> tokens = {1, 17, 300, 42, 99, 7, 260, 5};
  for (DType dtype : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0}) {
    INFO(dtype_name(dtype));
    SynthSpec s = synth_preset("mixtral-tiny");
    s.dtype = dtype;
    // The seed tests/line/moe_test.cpp chose: no router near-ties on these tokens, so the float
    // rounding of the device's logits cannot rightly pick another expert (checked below).
    s.seed = 45;
    s.layers = 2;  // the seed's first two layers: enough for the line, half the time
    const fs::path path = dir / (std::string("mixtral-") + dtype_name(dtype) + ".gguf");
    synth_write(s, path);
    Line line(path.string(), "vulkan", "");
    REQUIRE(line.graph.backends == std::vector<std::string>{"vulkan"});
    REQUIRE(line.graph.hp.n_expert == 8);
    CHECK(line.graph.blocks[1][1].second.impl->entry.variant == "moe");
    testing::ReferenceLlama ref(*line.model, testing::read_llama_hparams(*line.model));
    std::vector<std::vector<double>> want;
    for (int32_t t : tokens) want.push_back(ref.step(t));
    REQUIRE(ref.min_router_gap() > 1e-3);
    check_logits(*line.pipeline, tokens, want, {1, 8});  // 2 slots (matrix-vector), 16 slots (tiles) per step
  }
  fs::remove_all(dir);
}
