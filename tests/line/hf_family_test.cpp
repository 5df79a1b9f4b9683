// A Hugging Face folder and the GGUF it stands for are one model: each family's synthetic model
// (the ones tests/line/family_test.cpp holds against llama.cpp) is written as a Hugging Face folder
// (tests/common/hf_writer.h: transformers' names, config.json, llama's rotate-half q/k rows and
// GPT-NeoX's qkv rows per head),
// read back, and must give the GGUF's metadata, tensors and logits bit for bit, on every backend.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/hf_writer.h"
#include "core/model/synth.h"
#include "line/line_util.h"
#include "stations/targets.h"

using namespace semline;
using namespace semline::linetest;
using namespace semline::stationtest;
namespace fs = std::filesystem;

namespace {

struct Case {
  const char* label;
  SynthSpec spec;
  int shards;
};

std::vector<Case> cases() {
  auto tiny = [](const char* arch, uint64_t seed) {
    SynthSpec s = synth_preset("tiny");
    s.arch = arch;
    s.seed = seed;
    return s;
  };
  SynthSpec llama = tiny("llama", 1), mistral = tiny("llama", 2), scaled = tiny("llama", 3), qwen2 = tiny("qwen2", 16),
            qwen3 = tiny("qwen3", 11), phi3 = tiny("phi3", 11), gemma2 = tiny("gemma2", 2),
            starcoder2 = tiny("starcoder2", 5), stablelm = tiny("stablelm", 6), gptneox = tiny("gptneox", 7);
  mistral.window = 5;
  mistral.kv_heads = 2;
  scaled.rope_scale = 4;
  qwen3.head_dim = 32;
  qwen3.tied_output = true;
  gemma2.window = 4;
  gemma2.attn_softcap = 1.5;
  gemma2.final_softcap = 4;
  starcoder2.window = 6;
  gptneox.kv_heads = gptneox.heads;  // GPT-NeoX has no grouped kv heads
  return {{"llama", llama, 2},   {"mistral (sliding window, grouped kv)", mistral, 3},
          {"llama, linear RoPE scaling", scaled, 1}, {"qwen2", qwen2, 2}, {"qwen3 (tied head)", qwen3, 2},
          {"phi3", phi3, 1}, {"gemma2 (norms as w of 1 + w)", gemma2, 2},
          {"starcoder2 (LayerNorm, biases, a window)", starcoder2, 2}, {"stablelm (partial RoPE)", stablelm, 1},
          {"gptneox (qkv rows per head, parallel residual)", gptneox, 3}};
}

}  // namespace

TEMPLATE_TEST_CASE("a Hugging Face folder of each family is its GGUF: metadata, tensors and logits bit for bit",
                   "[line][hf]", SEMLINE_STATION_TARGETS) {
  REQUIRE_TARGET();
  const std::vector<int32_t> tokens = {1, 17, 300, 42, 99, 7, 260, 5, 5, 123, 64, 3};
  for (const Case& c : cases()) {
    INFO(c.label);
    const fs::path gguf = scratch(std::string("hf-") + c.spec.arch + ".gguf"), folder = scratch("hf-folder");
    fs::remove_all(folder);
    synth_write(c.spec, gguf);
    testing::write_hf_folder(*open_model_file(gguf), folder, c.shards);
    Line from_gguf(gguf, on_backend(TestType::kName)), from_folder(folder, on_backend(TestType::kName));
    const ModelFile& a = *from_gguf.model;
    const ModelFile& b = *from_folder.model;

    // Every key the GGUF has, the folder has with the same value (the SentencePiece scores are
    // recomputed from the merges, and general.name is the folder's).
    for (const auto& [key, va] : a.metadata()) {
      if (key == "general.name" || key == "tokenizer.ggml.scores") continue;
      INFO(key);
      const MetaValue* vb = b.meta(key);
      REQUIRE(vb);
      CHECK(vb->f == va.f);
      CHECK(vb->u == va.u);
      CHECK(vb->str == va.str);
      CHECK(vb->strings == va.strings);
      CHECK(vb->count == va.count);
      if (va.type == MetaType::ARRAY && va.elem != MetaType::STRING)
        for (uint64_t i = 0; i < va.count; ++i) REQUIRE(vb->at<double>(i) == va.template at<double>(i));
    }
    // The same tensors, q/k rows back in llama.cpp's order.
    CHECK(b.tensors().size() == a.tensors().size());
    for (const TensorInfo& t : a.tensors()) {
      INFO(t.name);
      const TensorInfo* u = b.tensor_info(t.name);
      REQUIRE(u);
      CHECK(tensor_shape_string(u->view) == tensor_shape_string(t.view));
      REQUIRE(u->bytes == t.bytes);
      CHECK(std::memcmp(u->view.host, t.view.host, t.bytes) == 0);
    }
    CHECK(from_folder.graph.hp.arch == from_gguf.graph.hp.arch);
    for (int chunk : {1, 5}) CHECK(from_folder.logits(tokens, chunk) == from_gguf.logits(tokens, chunk));
    fs::remove(gguf);
    fs::remove_all(folder);
  }
}
