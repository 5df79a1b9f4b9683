// The plugin's entries: keys, supports() reasons and factories.
#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "core/host/plugin_host.h"
#include "core/host/registry.h"
#include "fake_model.h"
#include "tokenizer_test_util.h"
#include "tokenizers/tokenizers.h"

namespace semline::test {

namespace {

class CollectingRegistry : public Registry {
 public:
  void add_stage(StageEntry e) override { stages.push_back(std::move(e)); }
  void add_backend(BackendEntry) override { FAIL("a tokenizer plugin adds no backend"); }
  void add_arch(ArchTemplate) override { FAIL("a tokenizer plugin adds no architecture"); }
  void log(LogLevel, std::string_view) override {}
  void add_proposer(ProposerEntry) override { FAIL("a tokenizer plugin adds no proposer"); }
  void add_comm(CommEntry) override { FAIL("a tokenizer plugin adds no communicator"); }
  std::vector<StageEntry> stages;
};

const StageEntry& entry(const CollectingRegistry& r, std::string_view variant) {
  auto it = std::find_if(r.stages.begin(), r.stages.end(), [&](const StageEntry& e) { return e.variant == variant; });
  REQUIRE(it != r.stages.end());
  return *it;
}

StageContext context_for(const ModelView& m) {
  StageContext ctx;
  ctx.model = &m;
  ctx.station = "tokenizer";
  return ctx;
}

}  // namespace

TEST_CASE("the plugin registers spm, bpe, wordpiece and char tokenizer entries", "[tokenizers]") {
  CollectingRegistry r;
  tokenizers::register_tokenizers(r);
  REQUIRE(r.stages.size() == 4);
  for (const StageEntry& e : r.stages) {
    INFO(e.variant);
    CHECK(e.kind == StageKind::Tokenizer);
    CHECK(e.backend == "any");
    CHECK(!e.description.empty());
    CHECK(e.supports);
    CHECK(e.make_tokenizer);
    CHECK(!e.make_stage);
    CHECK(!e.make_sampler);
  }
  CHECK(entry(r, "spm").variant == "spm");
  CHECK(entry(r, "bpe").variant == "bpe");
  CHECK(entry(r, "wordpiece").variant == "wordpiece");
  CHECK(entry(r, "char").variant == "char");
}

TEST_CASE("supports() matches tokenizer.ggml.model and says why not", "[tokenizers]") {
  CollectingRegistry r;
  tokenizers::register_tokenizers(r);
  const StageEntry& spm = entry(r, "spm");
  const StageEntry& bpe = entry(r, "bpe");

  StageContext llama = context_for(model_file("vocab/ggml-vocab-llama-spm.gguf"));
  StageContext gpt2 = context_for(model_file("vocab/ggml-vocab-gpt-2.gguf"));
  CHECK(spm.supports(llama).empty());
  CHECK(bpe.supports(gpt2).empty());
  CHECK(spm.supports(gpt2) == std::vector<std::string>{"tokenizer.ggml.model is 'gpt2', spm serves 'llama'"});
  CHECK(bpe.supports(llama) == std::vector<std::string>{"tokenizer.ggml.model is 'llama', bpe serves 'gpt2'"});

  FakeModel bare("bare.gguf");
  StageContext none = context_for(bare);
  CHECK(spm.supports(none) == std::vector<std::string>{"tokenizer.ggml.model is missing from bare.gguf"});

  FakeModel odd("odd.gguf");
  odd.set_string("tokenizer.ggml.model", "gpt2");
  odd.set_string("tokenizer.ggml.pre", "unheard-of");
  const std::vector<std::string> why = bpe.supports(context_for(odd));
  REQUIRE(why.size() == 1);
  CHECK_THAT(why[0], Catch::StartsWith("tokenizer.ggml.pre is 'unheard-of'; bpe supports: gpt-2, "));

  FakeModel typed("typed.gguf");
  typed.set_u32("tokenizer.ggml.model", 1);
  std::vector<std::string> reasons = spm.supports(context_for(typed));
  REQUIRE(reasons.size() == 1);
  CHECK(reasons[0].find("tokenizer.ggml.model must be a string") != std::string::npos);

  CHECK(spm.supports(StageContext{}) == std::vector<std::string>{"no model to read the vocabulary from"});
}

TEST_CASE("factories build working tokenizers and refuse the wrong model", "[tokenizers]") {
  CollectingRegistry r;
  tokenizers::register_tokenizers(r);
  StageContext llama = context_for(model_file("vocab/ggml-vocab-llama-spm.gguf"));
  StageContext gpt2 = context_for(model_file("vocab/ggml-vocab-gpt-2.gguf"));
  std::vector<std::string> logged;
  gpt2.log = [&](LogLevel, std::string_view m) { logged.emplace_back(m); };

  auto spm = entry(r, "spm").make_tokenizer(llama);
  CHECK(spm->encode("Hello world", true, false) == std::vector<int32_t>{1, 15043, 3186});
  auto bpe = entry(r, "bpe").make_tokenizer(gpt2);
  CHECK(bpe->encode("Hello world", true, false) == std::vector<int32_t>{15496, 995});
  CHECK(!logged.empty());  // the vocabulary summary goes to the host's log

  require_error([&] { entry(r, "spm").make_tokenizer(gpt2); }, {"tokenizer spm", "'gpt2'"});
  require_error([&] { entry(r, "bpe").make_tokenizer(StageContext{}); }, {"tokenizer bpe", "no model"});
}

TEST_CASE("the built plugin library loads and serves both variants", "[tokenizers]") {
  StageRegistry reg;
  PluginHost host(reg);
  host.load(std::string(SEMLINE_PLUGIN_DIR) + "/libsemline-tokenizers.so");
  const RegisteredStage* spm = reg.find(StageKind::Tokenizer, "spm", "any");
  const RegisteredStage* bpe = reg.find(StageKind::Tokenizer, "bpe", "any");
  REQUIRE(spm);
  REQUIRE(bpe);
  CHECK(spm->plugin == "tokenizers");
  StageContext ctx = context_for(model_file("gguf/stories260K.gguf"));
  CHECK(bpe->entry.supports(ctx) == std::vector<std::string>{"tokenizer.ggml.model is 'llama', bpe serves 'gpt2'"});
  auto tok = spm->entry.make_tokenizer(ctx);
  CHECK(tok->encode("Hello world", true, false) == std::vector<int32_t>{1, 346, 306, 414, 263, 304, 341});
}

}  // namespace semline::test
