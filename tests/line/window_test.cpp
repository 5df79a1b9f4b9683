// Windowed attention through the whole line: a model trained with a sliding window placed on
// attention/sliding_window by rank, per-layer variants from the config, and the KV cache
// releasing the blocks behind the window, all against the float64 reference with the same
// per-layer masks (1e-5).
#include <catch2/catch.hpp>

#include <filesystem>

#include "common/reference_llama.h"
#include "core/engine/generator.h"
#include "core/model/synth.h"
#include "line/line_util.h"

using namespace semline;
namespace fs = std::filesystem;
using linetest::rel_err;
using linetest::Line;
using linetest::line_error;
using linetest::scratch;

namespace {

const std::vector<int32_t> kTokens = {1,  17, 300, 42, 99,  7,  260, 5,   5,  5,   123, 77, 400, 2,
                                      64, 64, 9,   31, 250, 11, 480, 303, 12, 13, 14,  15, 16,  3};

fs::path synth_model(const std::string& name, int64_t window, int64_t layers, const char* arch = "llama") {
  SynthSpec s = synth_preset("tiny");
  s.arch = arch;
  s.window = window;
  s.layers = layers;
  s.seed = 23;
  const fs::path path = scratch(name);
  synth_write(s, path);
  return path;
}

using linetest::worst_rel_err;

}  // namespace

TEST_CASE("a model with a sliding window runs on sliding_window by rank and matches the windowed reference") {
  const fs::path path = synth_model("window8.gguf", 8, 2);
  Line run(path);
  REQUIRE(run.graph.hp.sliding_window == 8);
  for (const auto& block : run.graph.blocks) {
    const GraphNode& attn = block[0].op;
    CHECK(attn.impl->entry.variant == "sliding_window");
    CHECK_THAT(attn.chosen_by, Catch::StartsWith("rank (the template's flash cannot serve: the model attends over a "
                                                 "sliding window of 8 positions"));
    CHECK(std::get<int64_t>(attn.params.values.at("window")) == 0);  // 0: the model's
  }
  const HParams hp = testing::read_llama_hparams(*run.model);
  testing::ReferenceOptions opt;
  opt.masks.assign(2, testing::sliding_window_mask(8));
  HParams no_window = hp;  // the same model attending to every key
  no_window.sliding_window = 0;
  testing::ReferenceLlama ref(*run.model, hp, opt), full(*run.model, no_window);
  std::vector<std::vector<double>> want, unmasked;
  for (int32_t t : kTokens) {
    want.push_back(ref.step(t));
    unmasked.push_back(full.step(t));
  }
  for (int32_t chunk : {1, 5, 28}) {
    INFO("chunk " << chunk);
    CHECK(worst_rel_err(run.logits(kTokens, chunk), want) <= 1e-5);
  }
  CHECK(worst_rel_err(run.logits(kTokens), unmasked) > 1e-3);  // the window matters past position 8

  CHECK_THAT(line_error(path, "[stages]\nattention = { variant = \"flash\" }\n"),
             Catch::Contains("line.toml:7:") && Catch::Contains("attention.flash.cpu cannot serve this model") &&
                 Catch::Contains("sliding window of 8 positions"));
  fs::remove_all(scratch("").parent_path());
}

TEST_CASE("Phi-3's and StarCoder2's windows are honoured as the model defines them") {
  for (const char* arch : {"phi3", "starcoder2"}) {
    INFO(arch);
    const fs::path path = synth_model(std::string(arch) + "-window.gguf", 8, 2, arch);
    Line run(path);
    REQUIRE(run.graph.hp.sliding_window == 8);
    const HParams hp = testing::read_llama_hparams(*run.model);
    HParams no_window = hp;
    no_window.sliding_window = 0;
    testing::ReferenceOptions opt;
    opt.masks.assign(2, testing::sliding_window_mask(8));
    testing::ReferenceLlama ref(*run.model, hp, opt), full(*run.model, no_window);
    std::vector<std::vector<double>> want, unmasked;
    for (int32_t t : kTokens) {
      want.push_back(ref.step(t));
      unmasked.push_back(full.step(t));
    }
    CHECK(worst_rel_err(run.logits(kTokens, 5), want) <= 1e-5);
    CHECK(worst_rel_err(run.logits(kTokens), unmasked) > 1e-3);
  }
  fs::remove_all(scratch("").parent_path());
}

TEST_CASE("per-layer variants: dense in blocks 0-1, sliding_window after, against the same per-layer masks") {
  const fs::path path = synth_model("layers4.gguf", 0, 4);
  Line run(path,
          "[stages]\nattention = { variant = \"sliding_window\", window = 6, block = 4 }\n"
          "[[stages.layers]]\nrange = \"0-1\"\nattention = { variant = \"dense\" }\n"
          "[kv_cache]\nblock_tokens = 4\n");
  for (int l = 0; l < 4; ++l) CHECK(run.graph.blocks[l][0].op.impl->entry.variant == (l < 2 ? "dense" : "sliding_window"));
  testing::ReferenceOptions opt;
  opt.masks = {{}, {}, testing::sliding_window_mask(6), testing::sliding_window_mask(6)};
  testing::ReferenceLlama ref(*run.model, testing::read_llama_hparams(*run.model), opt);
  std::vector<std::vector<double>> want;
  for (int32_t t : kTokens) want.push_back(ref.step(t));
  for (int32_t chunk : {1, 7}) {
    INFO("chunk " << chunk);
    CHECK(worst_rel_err(run.logits(kTokens, chunk), want) <= 1e-5);
  }

  // Dense layers read the whole context: the cache releases nothing.
  Pipeline& p = *run.pipeline;
  CHECK(p.kv().options().window == 0);
  const int32_t seq = p.kv().new_sequence();
  prefill(p, seq, kTokens);
  CHECK(p.kv().used_blocks(seq) == 7);  // 28 positions in blocks of 4
  p.kv().free_sequence(seq);
  fs::remove_all(scratch("").parent_path());
}

TEST_CASE("the KV cache releases the blocks behind the window: a long generation holds a bounded few, same logits") {
  constexpr int32_t kWindow = 16, kBlock = 4, kStep = 8;
  const fs::path path = synth_model("window16.gguf", kWindow, 2);
  Line run(path, "max_batch_tokens = 8\nmax_seqs = 1\n[kv_cache]\nblock_tokens = 4\n");
  Pipeline& p = *run.pipeline;
  REQUIRE(p.kv().options().window == kWindow);
  // A step spans window - 1 positions back and up to 8 new ones: (15 + 8) / 4 rounded up, + 1.
  CHECK(p.kv().free_blocks() == 7);

  testing::ReferenceOptions opt;
  opt.masks.assign(2, testing::sliding_window_mask(kWindow));
  testing::ReferenceLlama ref(*run.model, testing::read_llama_hparams(*run.model), opt);
  const int32_t seq = p.kv().new_sequence();
  std::vector<double> want;
  for (int32_t t : kTokens) want = ref.step(t);
  std::span<const float> got = prefill(p, seq, kTokens);  // steps of 8 tokens
  CHECK(rel_err(got, want) <= 1e-5);
  double worst_err = 0;
  int32_t most_blocks = 0;
  for (int i = 0; i < 220; ++i) {  // greedy, far past the 7 blocks' 28 positions
    int32_t next = 0;
    for (size_t j = 1; j < got.size(); ++j)
      if (got[j] > got[next]) next = static_cast<int32_t>(j);
    want = ref.step(next);
    got = prefill(p, seq, std::span<const int32_t>(&next, 1));
    worst_err = std::max(worst_err, rel_err(got, want));
    most_blocks = std::max(most_blocks, p.kv().used_blocks(seq));
  }
  CHECK(p.kv().n_past(seq) == 28 + 220);
  CHECK(worst_err <= 1e-5);
  CHECK(most_blocks <= kWindow / kBlock + 2);
  WARN("window " << kWindow << ", blocks of " << kBlock << ", steps up to " << kStep << ": at most " << most_blocks
                 << " blocks held over " << p.kv().n_past(seq) << " positions");
  p.kv().free_sequence(seq);
  CHECK(p.kv().free_blocks() == 7);
  fs::remove_all(scratch("").parent_path());
}
