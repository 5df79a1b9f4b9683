// End to end: the real slm4096 model (a tiny character-level GPT-2) through the plugins of this
// build, read from its Hugging Face folder and from its conversion to GGUF, against the float64
// GPT-2 reference pass: logits, greedy text and the loss on its own training text.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <iterator>

#include "common/compare.h"
#include "common/require.h"
#include "common/pipeline_logits.h"
#include "common/reference_gpt2.h"
#include "common/test_plugins.h"
#include "core/config/config.h"
#include "core/engine/generator.h"
#include "core/engine/pipeline.h"
#include "core/engine/quality.h"
#include "core/graph/graph.h"
#include "core/model/gguf_writer.h"
#include "core/model/model_file.h"
#include "model/model_test_util.h"

using namespace semline;

namespace {

const std::string kFolder = std::string(SEMLINE_MODELS_DIR) + "/gpt2/slm4096";

struct Line {
  std::unique_ptr<ModelFile> model;
  PipelineGraph graph;
  std::unique_ptr<Pipeline> pipeline;
  Line(const std::string& path, const std::string& extra) : model(open_model_file(path)) {
    const Config config = parse_config("[model]\npath = \"" + path + "\"\n[runtime]\nthreads = 2\n" + extra, "test.toml");
    graph = build_graph(config, *model, testing::built_plugins());
    pipeline = std::make_unique<Pipeline>(graph, *model, testing::built_plugins(), pipeline_options(config));
  }
};

// The first n characters of the model's training text.
std::string corpus(size_t n) {
  std::ifstream f(kFolder + "/corpus.txt", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  REQUIRE(text.size() >= n);
  return text.substr(0, n);
}

using testing::all_logits;
using testing::rel_err;

// The converted model, written once per test process.
const std::string& converted() {
  static test::TempDir dir;
  static const std::string path = [] {
    const std::string p = (dir / "slm4096.gguf").string();
    write_gguf(*open_model_file(kFolder), p);
    return p;
  }();
  return path;
}

}  // namespace

TEST_CASE("slm4096 logits match the float64 GPT-2 reference at every position of the first 128 corpus characters") {
  const std::string text = corpus(128);
  for (const char* extra : {"[stages]\nattention = { variant = \"flash\", block = 16 }\n",
                            "[stages]\nattention = { variant = \"dense\" }\n"}) {
    INFO(extra);
    Line line(kFolder, extra);
    const std::vector<int32_t> tokens = line.pipeline->tokenizer().encode(text, true);
    REQUIRE(tokens.size() == 128);  // one token per character, no BOS
    testing::ReferenceGpt2 ref(*line.model, testing::read_gpt2_hparams(*line.model));
    std::vector<std::vector<double>> want;
    for (int32_t t : tokens) want.push_back(ref.step(t));
    for (int chunk : {1, 9, 128}) {
      INFO("chunk " << chunk);
      auto got = all_logits(*line.pipeline, tokens, chunk);
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        INFO("position " << i);
        CHECK(rel_err(got[i], want[i]) <= 1e-5);
      }
    }
  }
}

TEST_CASE("slm4096 from its Hugging Face folder and from its GGUF conversion gives identical logits") {
  const std::string text = corpus(128);
  Line hf(kFolder, ""), gguf(converted(), "");
  CHECK(gguf.model->format().rfind("GGUF v3", 0) == 0);
  CHECK(gguf.graph.hp.ffn_act == Activation::Gelu);
  const std::vector<int32_t> tokens = hf.pipeline->tokenizer().encode(text, true);
  REQUIRE(gguf.pipeline->tokenizer().encode(text, true) == tokens);
  auto a = all_logits(*hf.pipeline, tokens, 32), b = all_logits(*gguf.pipeline, tokens, 32);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == b[i]);
}

TEST_CASE("slm4096 greedy from 'Q: Can you reason?', a newline and 'A:' continues ' I can produce the shape of reasoning.'") {
  const std::string prompt = "Q: Can you reason?\nA:", want = " I can produce the shape of reasoning.";
  for (const std::string& path : {kFolder, converted()}) {
    INFO(path);
    Line line(path, "[stages]\nsampler = { chain = [\"greedy\"] }\n");
    GenerateOptions go;
    go.max_tokens = static_cast<int32_t>(want.size());
    GenerateResult r = generate(*line.pipeline, line.pipeline->tokenizer().encode(prompt, true), go);
    CHECK(r.text == want);
  }
}

TEST_CASE("slm4096's mean loss on the first 128 characters of its corpus is 0.076 nats") {
  // The 127 predictions inside the window: the logits at positions 0..126 scored on the
  // characters at 1..127 (the first character has nothing to be predicted from).
  const std::string text = corpus(128);
  Line line(kFolder, "");
  const std::vector<int32_t> tokens = line.pipeline->tokenizer().encode(text, true);
  auto logits = all_logits(*line.pipeline, tokens, 128);
  double nll = 0;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    double mx = -INFINITY, sum = 0;
    for (float v : logits[i]) mx = std::max(mx, static_cast<double>(v));
    for (float v : logits[i]) sum += std::exp(v - mx);
    nll += std::log(sum) + mx - logits[i][tokens[i + 1]];
  }
  const double mean = nll / 127;
  CHECK(mean == Approx(0.076).margin(0.002));
  // The bench's quality meter scores the same predictions.
  QualityOptions qo;
  qo.window = 128;
  qo.max_windows = 1;
  const QualityResult q = score_text(*line.pipeline, tokens, qo);
  CHECK(q.n_scored == 127);
  CHECK(q.nll / q.n_scored == Approx(mean).epsilon(1e-6));
}

TEST_CASE("on vulkan, every GPT-2 station has a stage: the graph places the whole line there") {
  if (!testing::built_plugins().find_backend("vulkan"))
    SEMLINE_SKIP_TEST("vulkan", "the vulkan plugin is not built (it needs the Vulkan headers and glslc)");
  // The graph asks only the entries' supports(), not the device: this runs without one.
  auto model = open_model_file(kFolder);
  const Config c = parse_config("[model]\npath = \"" + kFolder + "\"\n[runtime]\nbackend = \"vulkan\"\n", "test.toml");
  const PipelineGraph g = build_graph(c, *model, testing::built_plugins());
  CHECK(g.backends == std::vector<std::string>{"vulkan"});
  CHECK(g.embedding.impl->entry.variant == "lookup");
  for (const auto& block : g.blocks) {
    CHECK(block[0].first.impl->entry.variant == "layer");
    CHECK(block[0].second.impl->entry.variant == "flash");
    CHECK(block[1].first.impl->entry.variant == "layer");
    CHECK(block[1].second.impl->entry.variant == "dense");
  }
  CHECK(g.output_norm.impl->entry.variant == "layer");
  CHECK(g.head.impl->entry.backend == "vulkan");
}

TEST_CASE("the gpt2 arch reads gpt2.feed_forward_activation: absent is gelu_tanh, an unknown one is refused") {
  auto hf = open_model_file(kFolder);
  test::TempDir dir;
  // slm4096 rewritten with the activation key absent or set to `value`.
  auto with_activation = [&](const char* value) {
    gguf::GgufWriter w;
    for (const auto& [key, v] : hf->metadata())
      if (key != "gpt2.feed_forward_activation") w.add_meta(key, v);
    if (value) w.add_string("gpt2.feed_forward_activation", value);
    for (const TensorInfo& t : hf->tensors())
      w.add_tensor(t.name, t.view.dtype, std::vector<int64_t>(t.view.ne, t.view.ne + t.view.ndim),
                   std::span<const uint8_t>(static_cast<const uint8_t*>(t.view.host), t.bytes));
    const std::string path = (dir / (std::string(value ? value : "absent") + ".gguf")).string();
    w.write(path);
    return path;
  };
  const RegisteredArch* gpt2 = testing::built_plugins().find_arch("gpt2");
  REQUIRE(gpt2);
  CHECK(gpt2->arch.read_hparams(*open_model_file(with_activation(nullptr))).ffn_act == Activation::GeluTanh);
  CHECK(gpt2->arch.read_hparams(*open_model_file(with_activation("gelu_tanh"))).ffn_act == Activation::GeluTanh);
  const std::string relu = with_activation("relu");
  CHECK_THROWS_WITH(gpt2->arch.read_hparams(*open_model_file(relu)),
                    Catch::Contains("gpt2.feed_forward_activation = 'relu' is not an activation of the gpt2 arch") &&
                        Catch::Contains("valid: gelu (exact), gelu_tanh"));
}
