// Every way a config can be wrong gives one line naming file:line:col, the key, the value and what
// would be valid.
#include <catch2/catch.hpp>

#include "config_test_util.h"

using namespace semline;
using semline::test::config_error_of;

namespace {

struct BadConfig {
  const char* what;
  std::string text;  // after a valid [model] table, so lines start at 3
  std::vector<std::string> expected;  // substrings of the message
};

const std::string kModel = "[model]\npath = \"m.gguf\"\n";

void check_all(const std::vector<BadConfig>& cases) {
  for (const auto& bad : cases) {
    INFO(bad.what << "\n--- config:\n" << kModel + bad.text);
    std::string message = config_error_of(kModel + bad.text);
    INFO("--- message: " << message);
    REQUIRE(!message.empty());
    CHECK(message.find('\n') == std::string::npos);
    for (const auto& part : bad.expected) CHECK_THAT(message, Catch::Contains(part));
  }
}

}  // namespace

TEST_CASE("unknown keys name their position, the valid keys and the closest one") {
  check_all({
      {"top level", "[runtme]\nthreads = 1\n",
       {"t.toml:3:2: unknown key 'runtme' in the top level", "did you mean 'runtime'",
        "valid keys: model, runtime, stages, kv_cache"}},
      {"runtime", "[runtime]\nthread = 2\n",
       {"t.toml:4:1: unknown key 'thread' in [runtime]", "did you mean 'threads'",
        "valid keys: backend, threads, plugin_paths, max_batch_tokens, max_seqs, context, prefer"}},
      {"kv_cache", "[kv_cache]\nblock_token = 8\n",
       {"t.toml:4:1: unknown key 'block_token' in [kv_cache]", "did you mean 'block_tokens'",
        "valid keys: block_tokens, dtype, size_mib, blocks, prefix_caching"}},
      // A table under [stages] may name a station of the model's template, which the graph checks
      // (tests/line/graph_test.cpp); anything else is refused here.
      {"a value that is no stage table", "[stages]\natention = \"flash\"\n",
       {"t.toml:4:1: unknown key 'atention' in [stages]", "did you mean 'attention'",
        "tokenizer, embedding, norm, attention, ssm, ffn, head, sampler, layers"}},
      {"layer table", "[[stages.layers]]\nrange = \"0\"\nattn = \"dense\"\n",
       {"t.toml:5:1: unknown key 'attn' in [[stages.layers]]", "valid keys: range, embedding, norm, attention, ssm, ffn, head"}},
      {"no suggestion for a far-off key", "[runtime]\nzzzzzzzz = 1\n",
       {"t.toml:4:1: unknown key 'zzzzzzzz' in [runtime]; valid keys:"}},
  });
  std::string m = config_error_of("[model]\npath = \"m.gguf\"\nformat = \"gguf\"\n");
  CHECK_THAT(m, Catch::Contains("t.toml:3:1: unknown key 'format' in [model]") && Catch::Contains("valid keys: path"));
}

TEST_CASE("values of the wrong type or out of range name the key, the value and what is valid") {
  check_all({
      {"threads type", "[runtime]\nthreads = \"two\"\n",
       {"t.toml:4:11: runtime.threads = \"two\": expected an integer in 0..1024, got a string"}},
      {"threads negative", "[runtime]\nthreads = -1\n",
       {"t.toml:4:11: runtime.threads = -1: out of range; expected an integer in 0..1024"}},
      {"threads float", "[runtime]\nthreads = 2.0\n", {"runtime.threads = 2.0", "got a float"}},
      {"batch zero", "[runtime]\nmax_batch_tokens = 0\n",
       {"t.toml:4:20: runtime.max_batch_tokens = 0: out of range; expected an integer in 1..65536"}},
      {"batch huge", "[runtime]\nmax_batch_tokens = 65537\n", {"max_batch_tokens = 65537", "1..65536"}},
      {"context negative", "[runtime]\ncontext = -5\n", {"t.toml:4:11: runtime.context = -5: out of range; expected an integer in 0..16777216"}},
      {"backend type", "[runtime]\nbackend = 3\n",
       {"t.toml:4:11: runtime.backend = 3: expected a string, got an integer"}},
      {"backend empty", "[runtime]\nbackend = \"\"\n", {"runtime.backend = \"\": expected a non-empty string"}},
      {"plugin_paths not an array", "[runtime]\nplugin_paths = \"plugins\"\n",
       {"t.toml:4:16: runtime.plugin_paths = \"plugins\": expected an array of strings, got a string"}},
      {"plugin_paths element", "[runtime]\nplugin_paths = [\"a\", 7]\n",
       {"t.toml:4:22: runtime.plugin_paths[1] = 7: expected a string, got an integer"}},
      {"prefer not a table", "[runtime]\nprefer = \"x\"\n", {"t.toml:4:10: runtime.prefer = \"x\": expected a table"}},
      {"prefer key shape", "[runtime.prefer]\n\"attention.flash\" = \"p\"\n",
       {"t.toml:4:1: runtime.prefer key \"attention.flash\": expected \"kind.variant.backend\""}},
      {"prefer kind", "[runtime.prefer]\n\"atention.flash.cpu\" = \"p\"\n",
       {"t.toml:4:1:", "unknown stage kind 'atention'", "did you mean 'attention'"}},
      {"prefer value", "[runtime.prefer]\n\"attention.flash.cpu\" = 1\n",
       {"t.toml:4:25: runtime.prefer.\"attention.flash.cpu\" = 1: expected a string, got an integer"}},
      {"block_tokens", "[kv_cache]\nblock_tokens = 0\n",
       {"t.toml:4:16: kv_cache.block_tokens = 0: out of range; expected an integer in 1..4096"}},
      {"block_tokens huge", "[kv_cache]\nblock_tokens = 4097\n", {"kv_cache.block_tokens = 4097", "1..4096"}},
      {"dtype", "[kv_cache]\ndtype = \"f15\"\n",
       {"t.toml:4:9: kv_cache.dtype = \"f15\": expected \"f32\", \"f16\" or \"q8_0\"", "did you mean 'f16'"}},
      {"dtype type", "[kv_cache]\ndtype = 16\n", {"kv_cache.dtype = 16: expected a string, got an integer"}},
  });
  CHECK_THAT(config_error_of("runtime = \"cpu\"\n[model]\npath = \"m.gguf\"\n"),
             Catch::Contains("t.toml:1:11: runtime = \"cpu\": expected a table such as [runtime], got a string"));
  CHECK_THAT(config_error_of("[model]\npath = 3\n"),
             Catch::Contains("t.toml:2:8: model.path = 3: expected a string, got an integer"));
}

TEST_CASE("stage tables take variant, backend and typed parameters only") {
  check_all({
      {"stage not a table", "[stages]\nattention = \"flash\"\n",
       {"t.toml:4:13: stages.attention = \"flash\": expected a table such as { variant = \"...\" }, got a string"}},
      {"variant type", "[stages]\nnorm = { variant = 1 }\n",
       {"t.toml:4:20: stages.norm.variant = 1: expected a string, got an integer"}},
      {"variant empty", "[stages]\nnorm = { variant = \"\" }\n", {"stages.norm.variant = \"\": expected a non-empty string"}},
      {"backend type", "[stages]\nnorm = { backend = [\"cpu\"] }\n",
       {"t.toml:4:20: stages.norm.backend = [\"cpu\"]: expected a string, got an array"}},
      {"table parameter", "[stages.attention]\nvariant = \"flash\"\nopts = { a = 1 }\n",
       {"t.toml:5:8: stages.attention.opts = { a = 1 }: a table is not a parameter value",
        "bool, integer, float, string or an array of strings or numbers"}},
      {"date parameter", "[stages]\nsampler = { seed = 1979-05-27 }\n",
       {"t.toml:4:20: stages.sampler.seed = 1979-05-27: a date is not a parameter value"}},
      {"array of strings and numbers", "[stages]\nsampler = { chain = [\"top_k\", 2] }\n",
       {"t.toml:4:31: stages.sampler.chain[1] = 2: expected a string like the first element, got an integer",
        "a parameter array holds strings, integers or numbers, one kind"}},
      {"array of numbers and strings", "[stages]\nsampler = { ban_ids = [1, \"x\"] }\n",
       {"t.toml:4:27: stages.sampler.ban_ids[1] = \"x\": expected a number like the first element, got a string"}},
      {"array of tables", "[stages]\nsampler = { ban_ids = [{ a = 1 }] }\n",
       {"stages.sampler.ban_ids[0] = { a = 1 }: expected a string or a number, got a table"}},
      {"a sampler member's table holding a table", "[stages.sampler.top_k]\nx = { y = 1 }\n",
       {"t.toml:4:5: stages.sampler.top_k.x = { y = 1 }: a sampler's own parameters are values, not tables"}},
  });
}

TEST_CASE("[[serve.variants]] tables need a name of their own, a share >= 0 and known keys") {
  check_all({
      {"no name", "[[serve.variants]]\nshare = 1\n", {"t.toml:3:1: serve.variants[0]", "a variant needs a name"}},
      {"odd name", "[[serve.variants]]\nname = \"a b\"\n", {"serve.variants[0].name = \"a b\": expected letters, digits"}},
      {"negative share", "[[serve.variants]]\nname = \"a\"\nshare = -1\n", {"serve.variants[0].share = -1: expected a number >= 0"}},
      {"share type", "[[serve.variants]]\nname = \"a\"\nshare = \"half\"\n", {"expected a number >= 0, got a string"}},
      {"twice", "[[serve.variants]]\nname = \"a\"\n[[serve.variants]]\nname = \"a\"\n", {"the name 'a' is taken by another variant"}},
      {"unknown key", "[[serve.variants]]\nname = \"a\"\nsets = []\n",
       {"unknown key 'sets' in [[serve.variants]]", "did you mean 'set'"}},
      {"not tables", "[serve]\nvariants = 3\n", {"serve.variants = 3: expected [[serve.variants]] tables"}},
  });
}

TEST_CASE("layer overrides need a well-formed range and no overlap") {
  const std::string dense = "attention = { variant = \"dense\" }\n";
  check_all({
      {"range missing", "[[stages.layers]]\n" + dense,
       {"t.toml:3:1: stages.layers[0] has no range", "range = \"N\" or \"N-M\""}},
      {"range type", "[[stages.layers]]\nrange = 3\n" + dense,
       {"t.toml:4:9: stages.layers[0].range = 3: expected a string \"N\" or \"N-M\", got an integer"}},
      {"range malformed", "[[stages.layers]]\nrange = \"a-b\"\n" + dense,
       {"t.toml:4:9: stages.layers[0].range = \"a-b\": expected \"N\" or \"N-M\" with layer numbers N <= M"}},
      {"range negative", "[[stages.layers]]\nrange = \"-1\"\n" + dense, {"range = \"-1\": expected \"N\" or \"N-M\""}},
      {"range three parts", "[[stages.layers]]\nrange = \"1-2-3\"\n" + dense, {"range = \"1-2-3\": expected"}},
      {"range overflow", "[[stages.layers]]\nrange = \"99999999999\"\n" + dense, {"range = \"99999999999\": expected"}},
      {"range reversed", "[[stages.layers]]\nrange = \"5-2\"\n" + dense,
       {"t.toml:4:9: stages.layers[0].range = \"5-2\": first layer 5 is after last layer 2"}},
      {"tokenizer per layer", "[[stages.layers]]\nrange = \"1\"\ntokenizer = { variant = \"bpe\" }\n",
       {"t.toml:5:1: stages.layers[0].tokenizer: the tokenizer is not per layer; set it under [stages]"}},
      {"sampler per layer", "[[stages.layers]]\nrange = \"1\"\nsampler = {}\n", {"the sampler is not per layer"}},
      {"no stage", "[[stages.layers]]\nrange = \"1-2\"\n",
       {"t.toml:3:1: stages.layers[0] (range \"1-2\") sets no stage"}},
      {"layers not tables", "[stages]\nlayers = 3\n",
       {"t.toml:4:10: stages.layers = 3: expected [[stages.layers]] tables, got an integer"}},
      {"overlap", "[[stages.layers]]\nrange = \"0-3\"\n" + dense + "[[stages.layers]]\nrange = \"5\"\n" + dense +
                      "[[stages.layers]]\nrange = \"2-4\"\n" + dense,
       {"t.toml:10:9: layer range \"2-4\" overlaps range \"0-3\" at t.toml:4:9"}},
      {"same single layer", "[[stages.layers]]\nrange = \"7\"\n" + dense + "[[stages.layers]]\nrange = \"7\"\n" + dense,
       {"t.toml:7:9: layer range \"7\" overlaps range \"7\" at t.toml:4:9"}},
  });
}

TEST_CASE("many layer overrides are checked for overlap without comparing every pair") {
  // A 4 MiB config holds about 100000 [[stages.layers]] tables; compared pairwise they took many
  // seconds of CPU. Ranges 0, 2, 4, ... are disjoint; the last, 5-9, meets 6 and 8 and names the
  // earlier of them in the file.
  auto config = [](bool overlap_first) {
    std::string text = kModel;
    for (int i = 0; i < 100000; ++i)
      text += "[[stages.layers]]\nrange = \"" + std::to_string(overlap_first && i == 1 ? 0 : 2 * i) + "\"\nnorm = {}\n";
    return text + "[[stages.layers]]\nrange = \"5-9\"\nnorm = {}\n";
  };
  // Speed is a benchmark's business, not a test's: this checks that the check still finds the
  // right overlaps at this size (pairwise comparison made it take many seconds).
  CHECK_THAT(config_error_of(config(true)), Catch::Contains("t.toml:7:9: layer range \"0\" overlaps range \"0\""));
  CHECK(config_error_of(config(false)) ==
        "t.toml:300004:9: layer range \"5-9\" overlaps range \"6\" at t.toml:13:9; each layer may be named by one "
        "[[stages.layers]] table");
}

TEST_CASE("TOML syntax errors give the position and toml++'s description") {
  check_all({
      {"missing value", "[runtime]\nthreads = \n", {"t.toml:4:", "expected"}},
      {"redefined table", "[runtime]\nthreads = 1\n[runtime]\n", {"t.toml:5:", "runtime"}},
      {"duplicate key", "[kv_cache]\ndtype = \"f16\"\ndtype = \"f32\"\n", {"t.toml:5:"}},
      {"inline table reopened", "[stages]\nnorm = { variant = \"rms\" }\n[stages.norm]\nbackend = \"cpu\"\n",
       {"t.toml:5:"}},
  });
  CHECK_THAT(config_error_of("[model\npath = 1\n"), Catch::StartsWith("t.toml:1:"));
}

TEST_CASE("a config without a model path names the file") {
  CHECK(config_error_of("[runtime]\nthreads = 1\n") == "t.toml: no model; add [model] with path = \"<model file>.gguf\"");
  CHECK_THAT(config_error_of("[model]\n"), Catch::StartsWith("t.toml: no model"));
  CHECK_THAT(config_error_of(""), Catch::StartsWith("t.toml: no model"));
  CHECK_THAT(config_error_of("[model]\npath = \"\"\n"),
             Catch::Contains("t.toml:2:8: model.path = \"\": expected a non-empty string"));
}

TEST_CASE("long or strange values are quoted on one short line") {
  std::string m = config_error_of(kModel + "[kv_cache]\ndtype = \"" + std::string(500, 'x') + "\"\n");
  CHECK(m.size() < 200);
  CHECK_THAT(m, Catch::Contains("...: expected \"f32\", \"f16\" or \"q8_0\""));
  m = config_error_of(kModel + "[kv_cache]\ndtype = \"a\\nb\\u0001\"\n");
  CHECK_THAT(m, Catch::Contains("kv_cache.dtype = \"a\\nb\\u0001\""));
  CHECK(m.find('\n') == std::string::npos);
}
