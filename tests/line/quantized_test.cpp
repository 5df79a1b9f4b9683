// Quantised weights through the whole line: stories260K quantised to Q8_0 / Q4_0 against its F32
// self and against the float64 reference over the same weights (a synthetic llama in every weight
// dtype on every backend is line_test.cpp's).
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
using linetest::Line;
using linetest::scratch;

// Quantisation changes the model, so the bound is against the F32 model's logits. Measured max
// relative errors on this prompt: 1.6% (Q8_0) and 24% (Q4_0: a 64-wide model has few weights per
// scale to average the rounding out); the bounds leave about 2x room.
TEST_CASE("stories260K in Q8_0 and Q4_0 stays within bounds of F32 and still tells the story") {
  const fs::path f32 = std::string(SEMLINE_MODELS_DIR) + "/gguf/stories260K.gguf";
  Line base(f32);
  std::vector<int32_t> tokens = base.pipeline->tokenizer().encode("Once upon a time, there was a little girl named Lily.", true, false);
  auto want = base.logits(tokens);
  for (auto [dtype, bound] : {std::pair{DType::Q8_0, 0.03}, std::pair{DType::Q4_0, 0.4}}) {
    INFO(dtype_name(dtype));
    const fs::path path = scratch(std::string("stories-") + dtype_name(dtype) + ".gguf");
    quantize_gguf(f32, path, dtype);
    Line q(path);
    const double worst = linetest::worst_rel_err(q.logits(tokens), want);
    WARN(dtype_name(dtype) << ": max relative logit error vs F32 " << worst);
    CHECK(worst <= bound);
    CHECK(worst > 0);  // the weights really changed
    // The quantised kernels against the float64 pass over the same (dequantised) weights, its
    // inputs to those products rounded to 8 bits in blocks of 32 as the stages round them: what
    // is left is float against double, the kernels' own tolerance (measured 2.7e-7, Q8_0).
    testing::ReferenceOptions opt;
    opt.quantize_inputs = true;
    const auto want_ref = linetest::llama_reference(*q.model, tokens, opt);
    for (int32_t chunk : {1, 5, static_cast<int32_t>(tokens.size())}) {
      const double worst_ref = linetest::worst_rel_err(q.logits(tokens, chunk), want_ref);
      WARN(dtype_name(dtype) << ", " << chunk << " token(s) per step: max relative logit error vs the float64 reference " << worst_ref);
      CHECK(worst_ref <= 1e-5);
    }
    GenerateOptions go;
    go.max_tokens = 30;
    auto prompt = q.pipeline->tokenizer().encode("Once upon a time", true, false);
    GenerateResult r = generate(*q.pipeline, prompt, go);
    CHECK(r.text.find("Lily") != std::string::npos);
  }
  fs::remove_all(scratch("").parent_path());
}
