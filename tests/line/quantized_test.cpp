// Weight types through the whole line: a synthetic llama with GQA in F32 and F16 against the float64
// reference, and stories260K quantised to Q8_0 / Q4_0 against its F32 self.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "common/reference_llama.h"
#include "core/engine/generator.h"
#include "core/model/quantize.h"
#include "core/model/synth.h"
#include "line/line_util.h"

using namespace semline;
namespace fs = std::filesystem;

using linetest::rel_err;
using linetest::Run;
using linetest::scratch;

TEST_CASE("a synthetic llama with GQA matches the float64 reference in F32 and F16") {
  for (auto [dtype, tol] : {std::pair{DType::F32, 1e-5}, std::pair{DType::F16, 2e-3}}) {
    INFO(dtype_name(dtype));
    SynthSpec s = synth_preset("tiny");
    s.dtype = dtype;
    s.seed = 11;
    const fs::path path = scratch(std::string("tiny-") + dtype_name(dtype) + ".gguf");
    synth_write(s, path);
    Run run(path);
    REQUIRE(run.graph.hp.n_head_kv < run.graph.hp.n_head);
    std::vector<int32_t> tokens = {1, 17, 300, 42, 99, 7, 260, 5, 5, 5, 123, 77};
    auto got = run.logits(tokens);
    testing::ReferenceLlama ref(*run.model, testing::read_llama_hparams(*run.model));
    for (size_t i = 0; i < tokens.size(); ++i) CHECK(rel_err(got[i], ref.step(tokens[i])) <= tol);
  }
  fs::remove_all(scratch("").parent_path());
}

// Quantisation changes the model, so the bound is against the F32 model's logits. Measured max
// relative errors on this prompt: 1.6% (Q8_0) and 24% (Q4_0: a 64-wide model has few weights per
// scale to average the rounding out); the bounds leave about 2x room.
TEST_CASE("stories260K in Q8_0 and Q4_0 stays within bounds of F32 and still tells the story") {
  const fs::path f32 = std::string(SEMLINE_MODELS_DIR) + "/gguf/stories260K.gguf";
  Run base(f32);
  std::vector<int32_t> tokens = base.pipeline->tokenizer().encode("Once upon a time, there was a little girl named Lily.", true);
  auto want = base.logits(tokens);
  for (auto [dtype, bound] : {std::pair{DType::Q8_0, 0.03}, std::pair{DType::Q4_0, 0.4}}) {
    INFO(dtype_name(dtype));
    const fs::path path = scratch(std::string("stories-") + dtype_name(dtype) + ".gguf");
    quantize_gguf(f32, path, dtype);
    Run q(path);
    auto got = q.logits(tokens);
    double worst = 0;
    for (size_t i = 0; i < tokens.size(); ++i) worst = std::max(worst, rel_err(got[i], want[i]));
    WARN(dtype_name(dtype) << ": max relative logit error vs F32 " << worst);
    CHECK(worst <= bound);
    CHECK(worst > 0);  // the weights really changed
    // The quantised kernels against the float64 pass over the same (dequantised) weights, its
    // inputs to those products rounded to 8 bits in blocks of 32 as the stages round them: what
    // is left is float against double, the kernels' own tolerance (measured 2.7e-7, Q8_0).
    testing::ReferenceOptions opt;
    opt.quantize_inputs = true;
    testing::ReferenceLlama ref(*q.model, testing::read_llama_hparams(*q.model), opt);
    std::vector<std::vector<double>> want_ref;
    for (int32_t t : tokens) want_ref.push_back(ref.step(t));
    for (int32_t chunk : {1, 5, static_cast<int32_t>(tokens.size())}) {
      const auto got_chunked = q.logits(tokens, chunk);
      double worst_ref = 0;
      for (size_t i = 0; i < tokens.size(); ++i) worst_ref = std::max(worst_ref, rel_err(got_chunked[i], want_ref[i]));
      WARN(dtype_name(dtype) << ", " << chunk << " token(s) per step: max relative logit error vs the float64 reference " << worst_ref);
      CHECK(worst_ref <= 1e-5);
    }
    GenerateOptions go;
    go.max_tokens = 30;
    auto prompt = q.pipeline->tokenizer().encode("Once upon a time", true);
    GenerateResult r = generate(*q.pipeline, prompt, go);
    CHECK(r.text.find("Lily") != std::string::npos);
  }
  fs::remove_all(scratch("").parent_path());
}
