// "key=value" overrides: checked like the file, positioned in the assignment, all or nothing.
#include <catch2/catch.hpp>

#include "config_test_util.h"

using namespace semline;
using semline::test::override_error_of;

namespace {

Config base() {
  return parse_config(R"(
[model]
path = "m.gguf"
[stages]
attention = { variant = "dense", block = 32 }
[[stages.layers]]
range = "0-1"
ffn = { variant = "dense" }
)",
                      "base.toml");
}

}  // namespace

TEST_CASE("overrides set stage choices, typed parameters and runtime keys") {
  Config c = base();
  apply_override(c, "stages.attention.variant=flash");
  CHECK(c.stages.at("attention").variant == "flash");
  CHECK(c.stages.at("attention").variant_pos.str() == "override 'stages.attention.variant=flash':1:26");
  CHECK(c.stages.at("attention").pos.str() == "base.toml:5:13");  // the table keeps its place
  CHECK(std::get<int64_t>(c.stages.at("attention").params.at("block").value) == 32);

  apply_override(c, "stages.attention.block=64");
  CHECK(std::get<int64_t>(c.stages.at("attention").params.at("block").value) == 64);
  apply_override(c, "stages.sampler.temperature = 0.5");
  CHECK(std::get<double>(c.stages.at("sampler").params.at("temperature").value) == 0.5);
  CHECK(c.stages.at("sampler").params.at("temperature").pos.column == 30);
  apply_override(c, "stages.sampler.chain=[\"top_k\", \"draw\"]");
  CHECK(std::get<std::vector<std::string>>(c.stages.at("sampler").params.at("chain").value) ==
        std::vector<std::string>{"top_k", "draw"});
  apply_override(c, "stages.sampler.mode=  fast lane ");
  CHECK(std::get<std::string>(c.stages.at("sampler").params.at("mode").value) == "fast lane");
  CHECK(c.stages.at("sampler").params.at("mode").pos.column == 23);
  apply_override(c, "stages.sampler.exact=true");
  CHECK(std::get<bool>(c.stages.at("sampler").params.at("exact").value));
  apply_override(c, "stages.norm={ variant = \"rms\", backend = \"cuda\" }");
  CHECK(c.stages.at("norm").variant == "rms");
  CHECK(c.stages.at("norm").backend == "cuda");

  apply_override(c, "runtime.threads=4");
  CHECK(c.runtime.threads == 4);
  apply_override(c, "runtime.backend=vulkan");
  CHECK(c.runtime.backend == "vulkan");
  apply_override(c, "runtime.plugin_paths=[\"p1\", \"p2\"]");
  CHECK(c.runtime.plugin_paths == std::vector<std::filesystem::path>{"p1", "p2"});
  apply_override(c, "runtime.prefer.\"attention.flash.cpu\"=mine");
  apply_override(c, "runtime.prefer.norm.rms.cpu=theirs");
  CHECK(c.runtime.prefer.at("attention.flash.cpu") == "mine");
  CHECK(c.runtime.prefer.at("norm.rms.cpu") == "theirs");
  apply_override(c, "kv_cache.dtype=f16");
  CHECK(c.kv_cache.dtype == "f16");
  apply_override(c, "model.path=other.gguf");
  CHECK(c.model.path == std::filesystem::path("other.gguf"));

  apply_override(c, "stages.layers=[{ range = \"4-5\", attention = { variant = \"dense\" } }]");
  REQUIRE(c.layers.size() == 2);
  CHECK(c.layers[1].first == 4);
  CHECK(c.layers[1].last == 5);
}

TEST_CASE("malformed assignments are rejected with the assignment named") {
  Config c = base();
  CHECK(override_error_of(c, "stages.attention.variant") ==
        "override 'stages.attention.variant': expected key=value, e.g. stages.attention.variant=flash");
  CHECK_THAT(override_error_of(c, "=flash"), Catch::Contains("override '=flash': no key before '='"));
  CHECK_THAT(override_error_of(c, " = flash"), Catch::Contains("no key before '='"));
  CHECK_THAT(override_error_of(c, "runtime.threads="), Catch::Contains("override 'runtime.threads=': no value after '='"));
  CHECK_THAT(override_error_of(c, "runtime.threads=1\nruntime.context=5"), Catch::Contains("is one line"));
  CHECK_THAT(override_error_of(c, "stages..attention=1"), Catch::StartsWith("override 'stages..attention=1':1:"));
  CHECK_THAT(override_error_of(c, "stages.sampler.chain=[\"a\""), Catch::StartsWith("override 'stages.sampler.chain=[\"a\"':1:"));
}

TEST_CASE("overrides with unknown keys or bad values fail like the file would") {
  Config c = base();
  // Each override and the pieces of its one error.
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"runtime.thread=4",
       {"override 'runtime.thread=4':1:9: unknown key 'thread' in [runtime]", "did you mean 'threads'"}},
      {"stage.attention.variant=flash", {":1:1: unknown key 'stage' in the top level", "did you mean 'stages'"}},
      {"stages.atention=flash", {":1:8: unknown key 'atention' in [stages]", "did you mean 'attention'"}},
      {"runtime.threads=-1", {":1:17: runtime.threads = -1: out of range; expected an integer in 0..1024"}},
      {"runtime.threads=two", {":1:17: runtime.threads = \"two\": expected an integer in 0..1024, got a string"}},
      {"kv_cache.dtype=bf16", {"kv_cache.dtype = \"bf16\": expected \"f32\", \"f16\" or \"q8_0\""}},
      {"stages.attention=flash", {"stages.attention = \"flash\": expected a table"}},
      {"stages.layers=[{ range = \"1-2\", norm = {} }]",
       {"layer range \"1-2\" overlaps range \"0-1\" at base.toml:7:9"}},
      {"runtime.prefer.attention.flash=x",
       {"runtime.prefer key \"attention.flash\": expected \"kind.variant.backend\""}},
  };
  for (const auto& [assignment, pieces] : cases) {
    INFO(assignment);
    const std::string message = override_error_of(c, assignment);
    for (const std::string& piece : pieces) CHECK_THAT(message, Catch::Contains(piece));
  }
}

TEST_CASE("a failed override leaves the config as it was") {
  Config c = base();
  // variant applies before the table-valued parameter fails; neither may stick.
  CHECK(!override_error_of(c, "stages.attention={ variant = \"flash\", zparam = { a = 1 } }").empty());
  CHECK(c.stages.at("attention").variant == "dense");
  CHECK(c.stages.at("attention").backend.empty());
  CHECK(!override_error_of(c, "stages.layers=[{ range = \"5\", ffn = {} }, { range = \"0\", ffn = {} }]").empty());
  CHECK(c.layers.size() == 1);
}
