// End to end: the real slm4096 model (a tiny character-level GPT-2) through the plugins of this
// build, read from its Hugging Face folder and from its conversion to GGUF, against the float64
// GPT-2 reference pass: logits and greedy text on every backend, the loss on its own training
// text.
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
#include "line/line_util.h"
#include "model/model_test_util.h"
#include "stations/targets.h"

using namespace semline;
using namespace semline::stationtest;

namespace {

const std::string kFolder = std::string(SEMLINE_MODELS_DIR) + "/gpt2/slm4096";

// The first n characters of the model's training text.
std::string corpus(size_t n) {
  std::ifstream f(kFolder + "/corpus.txt", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  REQUIRE(text.size() >= n);
  return text.substr(0, n);
}

using linetest::Line;
using linetest::on_backend;
using testing::all_logits;

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

TEMPLATE_TEST_CASE("slm4096 logits match the float64 GPT-2 reference at every position of the first 128 corpus "
                   "characters, flash and dense",
                   "[line][gpt2]", SEMLINE_STATION_TARGETS) {
  REQUIRE_TARGET();
  const std::string text = corpus(128);
  std::vector<int32_t> tokens;
  std::vector<std::vector<double>> want;
  // Flash: decode (matrix-vector products), steps of 16 and one prefill (tiled products); dense:
  // steps of 5 (multi-row matrix-vector) and the prefill.
  struct Variant {
    const char* config;
    std::vector<int> chunks;
  };
  for (const Variant& v : {Variant{"[stages]\nattention = { variant = \"flash\", block = 16 }\n", {1, 16, 128}},
                           Variant{"[stages]\nattention = { variant = \"dense\" }\n", {5, 128}}}) {
    INFO(v.config);
    Line line(kFolder, on_backend(TestType::kName) + v.config);
    REQUIRE(line.graph.backends == std::vector<std::string>{TestType::kName});
    CHECK(line.graph.blocks[0][0].norm.impl->entry.variant == "layer");
    CHECK(line.graph.blocks[0][1].op.impl->entry.variant == "dense");
    if (tokens.empty()) {
      tokens = line.pipeline->tokenizer().encode(text, true, false);
      REQUIRE(tokens.size() == 128);  // one token per character, no BOS
      testing::ReferenceGpt2 ref(*line.model, testing::read_gpt2_hparams(*line.model));
      for (int32_t t : tokens) want.push_back(ref.step(t));
    }
    for (int chunk : v.chunks) {
      INFO("chunk " << chunk);
      CHECK(linetest::worst_rel_err(line.logits(tokens, chunk), want) <= 1e-5);
    }
  }
}

TEST_CASE("slm4096 from its Hugging Face folder and from its GGUF conversion gives identical logits") {
  const std::string text = corpus(128);
  Line hf(kFolder), gguf(converted());
  CHECK(gguf.model->format().rfind("GGUF v3", 0) == 0);
  CHECK(gguf.graph.hp.ffn_act == Activation::Gelu);
  const std::vector<int32_t> tokens = hf.pipeline->tokenizer().encode(text, true, false);
  REQUIRE(gguf.pipeline->tokenizer().encode(text, true, false) == tokens);
  auto a = hf.logits(tokens, 32), b = gguf.logits(tokens, 32);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == b[i]);
}

TEMPLATE_TEST_CASE("slm4096 greedy from 'Q: Can you reason?', a newline and 'A:' continues ' I can produce the shape "
                   "of reasoning.'",
                   "[line][gpt2]", SEMLINE_STATION_TARGETS) {
  REQUIRE_TARGET();
  const std::string prompt = "Q: Can you reason?\nA:", want = " I can produce the shape of reasoning.";
  for (const std::string& path : {kFolder, converted()}) {
    INFO(path);
    Line line(path, on_backend(TestType::kName) + "[stages]\nsampler = { chain = [\"greedy\"] }\n");
    GenerateOptions go;
    go.max_tokens = static_cast<int32_t>(want.size());
    GenerateResult r = generate(*line.pipeline, line.pipeline->tokenizer().encode(prompt, true, false), go);
    CHECK(r.text == want);
  }
}

TEST_CASE("slm4096's mean loss on the first 128 characters of its corpus is 0.076 nats") {
  // The 127 predictions inside the window: the logits at positions 0..126 scored on the
  // characters at 1..127 (the first character has nothing to be predicted from).
  const std::string text = corpus(128);
  Line line(kFolder);
  const std::vector<int32_t> tokens = line.pipeline->tokenizer().encode(text, true, false);
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
    CHECK(block[0].norm.impl->entry.variant == "layer");
    CHECK(block[0].op.impl->entry.variant == "flash");
    CHECK(block[1].norm.impl->entry.variant == "layer");
    CHECK(block[1].op.impl->entry.variant == "dense");
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
  CHECK(gpt2->entry.read_hparams(*open_model_file(with_activation(nullptr))).ffn_act == Activation::GeluTanh);
  CHECK(gpt2->entry.read_hparams(*open_model_file(with_activation("gelu_tanh"))).ffn_act == Activation::GeluTanh);
  const std::string relu = with_activation("relu");
  CHECK_THROWS_WITH(gpt2->entry.read_hparams(*open_model_file(relu)),
                    Catch::Contains("gpt2.feed_forward_activation = 'relu' is not an activation of the gpt2 arch") &&
                        Catch::Contains("valid: gelu (exact), gelu_tanh"));
}
