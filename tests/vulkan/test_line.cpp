// The whole line with stations on both vulkan and cpu, through the plugins of this build:
// activations moved through host memory, logits still the float64 reference's (stories260K and
// slm4096); and `semline bench` on the vulkan backend. What holds on every backend alone (logits,
// greedy text, many sequences, every weight dtype, GPT-2, Mixtral) is tests/line's, run per target.
//
// Tolerance: 1e-5 of the row's largest logit (F32 arithmetic, weights dequantised exactly).
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/reference_gpt2.h"
#include "line/line_util.h"
#include "vulkan/vulkan_test_util.h"

using namespace semline;
using linetest::Line;
using linetest::on_backend;
using linetest::worst_rel_err;
namespace fs = std::filesystem;

namespace {

const fs::path kStories = fs::path(SEMLINE_MODELS_DIR) / "gguf/stories260K.gguf";
const fs::path kSlm = fs::path(SEMLINE_MODELS_DIR) / "gpt2/slm4096";

// A line whose default backend is `backend` and whose config moves some stations to the other.
struct Split {
  const char* backend;
  const char* config;
  StageKind kind;      // a kind of station placed on
  const char* expect;  // this backend
};

// Runs `text` through each split of `model` against the reference, fed in steps of 1 and 16.
template <class Reference>
void check_splits(const fs::path& model, const std::string& text, size_t n_tokens, std::initializer_list<Split> splits,
                  Reference reference) {
  std::vector<int32_t> tokens;
  std::vector<std::vector<double>> want;
  for (const Split& s : splits) {
    INFO(s.backend << " with " << s.config);
    Line line(model, on_backend(s.backend) + s.config);
    REQUIRE(line.graph.backends.size() == 2);
    CHECK(line.backend_of(s.kind) == s.expect);
    if (tokens.empty()) {
      tokens = line.pipeline->tokenizer().encode(text, true, false);
      if (tokens.size() > n_tokens) tokens.resize(n_tokens);
      want = reference(*line.model, tokens);
    }
    for (int chunk : {1, 16}) {
      INFO("chunk " << chunk);
      CHECK(worst_rel_err(line.logits(tokens, chunk), want) <= 1e-5);
    }
  }
}

}  // namespace

TEST_CASE("mixed placement: stories260K's stations on vulkan and cpu, activations moved through host memory (needs "
          "a Vulkan device)",
          "[line]") {
  SEMLINE_REQUIRE_VULKAN();
  check_splits(
      kStories, "Tom had a red car. He drove it to the park.", 64,
      {Split{"vulkan", "[stages]\nffn = { variant = \"dense\", backend = \"cpu\" }\n", StageKind::Ffn, "cpu"},
       Split{"cpu",
             "[stages]\nattention = { variant = \"flash\", backend = \"vulkan\" }\nhead = { variant = \"dense\", "
             "backend = \"vulkan\" }\n",
             StageKind::Attention, "vulkan"},
       Split{"vulkan", "[[stages.layers]]\nrange = \"1-3\"\nattention = { variant = \"dense\", backend = \"cpu\" }\n",
             StageKind::Embedding, "vulkan"}},
      [](const ModelView& m, const std::vector<int32_t>& t) { return linetest::llama_reference(m, t); });
}

TEST_CASE("mixed placement: slm4096 (GPT-2) split between vulkan and cpu, logits still match (needs a Vulkan "
          "device)",
          "[line][gpt2]") {
  SEMLINE_REQUIRE_VULKAN();
  std::ifstream f(kSlm / "corpus.txt", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(f)), {});
  check_splits(kSlm, text.substr(0, 48), 48,  // the first 48 characters: the split is what is tested
               {Split{"vulkan", "[stages]\nffn = { variant = \"dense\", backend = \"cpu\" }\n", StageKind::Ffn, "cpu"},
                Split{"cpu",
                      "[stages]\nattention = { variant = \"flash\", backend = \"vulkan\" }\nnorm = { variant = "
                      "\"layer\", backend = \"vulkan\" }\n",
                      StageKind::Attention, "vulkan"}},
               [](const ModelView& m, const std::vector<int32_t>& t) {
                 testing::ReferenceGpt2 ref(m, testing::read_gpt2_hparams(m));
                 std::vector<std::vector<double>> want;
                 for (int32_t tok : t) want.push_back(ref.step(tok));
                 return want;
               });
}

TEST_CASE("semline bench runs stories260K on the vulkan backend (needs a Vulkan device)", "[line]") {
  SEMLINE_REQUIRE_VULKAN();
  const std::string cmd = std::string(SEMLINE_BIN_DIR) + "/semline bench -m " + kStories.string() +
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
