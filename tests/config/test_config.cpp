// A valid config reads into the right values, types and positions.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include "config_test_util.h"

using namespace semline;
namespace fs = std::filesystem;

namespace {

const char* kFull = R"(# every table of the schema
[model]
path = "../models/gguf/stories260K.gguf"

[runtime]
backend = "cuda"
threads = 2
plugin_paths = ["../build/plugins", "/opt/semline/plugins"]
max_batch_tokens = 256
context = 1024

[runtime.prefer]
"attention.flash.cpu" = "my-plugin"
norm.rms.cuda = "fast-norms"

[stages]
tokenizer = { variant = "spm" }
attention = { variant = "flash", block = 64, backend = "cpu" }
sampler = { chain = ["top_k", "temperature", "draw"], top_k = 40, temperature = 0.8, seed = 42, greedy_ok = true, name = "x" }

[stages.ffn]
variant = "moe"
capacity = 1.5

[[stages.layers]]
range = "0-3"
attention = { variant = "dense" }

[[stages.layers]]
range = "5"
ffn = { variant = "dense", backend = "cpu" }
norm = {}

[kv_cache]
block_tokens = 32
dtype = "f16"
)";

// A folder of its own under the system's temporary folder, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("semline-config-test-" + std::to_string(rd()));
    fs::create_directories(path / "configs");
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("a full config parses into the right values") {
  Config c = parse_config(kFull, "full.toml");
  CHECK(c.file.empty());
  CHECK(c.model.path == fs::path("../models/gguf/stories260K.gguf"));  // no folder: stays relative
  CHECK(c.model.pos.str() == "full.toml:3:8");

  CHECK(c.runtime.backend == "cuda");
  CHECK(c.runtime.backend_pos.str() == "full.toml:6:11");
  CHECK(c.runtime.threads == 2);
  REQUIRE(c.runtime.plugin_paths.size() == 2);
  CHECK(c.runtime.plugin_paths[0] == fs::path("../build/plugins"));
  CHECK(c.runtime.plugin_paths[1] == fs::path("/opt/semline/plugins"));
  CHECK(c.runtime.max_batch_tokens == 256);
  CHECK(c.runtime.context == 1024);
  CHECK(c.runtime.prefer == std::map<std::string, std::string>{{"attention.flash.cpu", "my-plugin"},
                                                               {"norm.rms.cuda", "fast-norms"}});

  REQUIRE(c.stages.size() == 4);
  CHECK(c.stages.at("tokenizer").variant == "spm");
  CHECK(c.stages.at("tokenizer").backend.empty());
  CHECK(c.stages.at("tokenizer").params.empty());

  const StageChoice& attn = c.stages.at("attention");
  CHECK(attn.variant == "flash");
  CHECK(attn.variant_pos.str() == "full.toml:18:25");
  CHECK(attn.backend == "cpu");
  CHECK(attn.backend_pos.str() == "full.toml:18:56");
  CHECK(attn.pos.str() == "full.toml:18:13");
  REQUIRE(attn.params.size() == 1);
  CHECK(std::get<int64_t>(attn.params.at("block").value) == 64);
  CHECK(attn.params.at("block").pos.str() == "full.toml:18:42");

  const StageChoice& s = c.stages.at("sampler");
  CHECK(s.variant.empty());
  CHECK(std::get<std::vector<std::string>>(s.params.at("chain").value) ==
        std::vector<std::string>{"top_k", "temperature", "draw"});
  CHECK(std::get<int64_t>(s.params.at("top_k").value) == 40);
  CHECK(std::get<double>(s.params.at("temperature").value) == 0.8);
  CHECK(std::get<int64_t>(s.params.at("seed").value) == 42);
  CHECK(std::get<bool>(s.params.at("greedy_ok").value) == true);
  CHECK(std::get<std::string>(s.params.at("name").value) == "x");

  const StageChoice& ffn = c.stages.at("ffn");
  CHECK(ffn.variant == "moe");
  CHECK(ffn.pos.line == 21);
  CHECK(std::get<double>(ffn.params.at("capacity").value) == 1.5);

  REQUIRE(c.layers.size() == 2);
  CHECK(c.layers[0].first == 0);
  CHECK(c.layers[0].last == 3);
  CHECK(c.layers[0].pos.str() == "full.toml:26:9");
  REQUIRE(c.layers[0].stages.size() == 1);
  CHECK(c.layers[0].stages.at("attention").variant == "dense");
  CHECK(c.layers[1].first == 5);
  CHECK(c.layers[1].last == 5);
  CHECK(c.layers[1].stages.at("ffn").backend == "cpu");
  CHECK(c.layers[1].stages.at("norm").variant.empty());

  CHECK(c.kv_cache.block_tokens == 32);
  CHECK(c.kv_cache.dtype == "f16");
  CHECK(c.kv_cache.pos.line == 34);
}

TEST_CASE("defaults hold where the config is silent") {
  Config c = parse_config("model.path = \"m.gguf\"\n", "min.toml");
  CHECK(c.model.path == fs::path("m.gguf"));
  CHECK(c.runtime.backend == "cpu");
  CHECK(c.runtime.backend_pos.line == 0);
  CHECK(c.runtime.threads == 0);
  CHECK(c.runtime.plugin_paths.empty());
  CHECK(c.runtime.prefer.empty());
  CHECK(c.runtime.max_batch_tokens == 512);
  CHECK(c.runtime.context == 0);
  CHECK(c.stages.empty());
  CHECK(c.layers.empty());
  CHECK(c.kv_cache.block_tokens == 16);
  CHECK(c.kv_cache.dtype == "f32");
}

TEST_CASE("load_config resolves relative paths against the config file's folder") {
  TempDir dir;
  fs::path file = dir.path / "configs" / "run.toml";
  {
    std::ofstream out(file);
    out << kFull;
  }
  Config c = load_config(file);
  CHECK(c.file == file);
  CHECK(c.model.path == (dir.path / "models/gguf/stories260K.gguf"));
  CHECK(c.runtime.plugin_paths[0] == (dir.path / "build/plugins"));
  CHECK(c.runtime.plugin_paths[1] == fs::path("/opt/semline/plugins"));
  CHECK(c.stages.at("attention").variant_pos.str() == file.string() + ":18:25");
}

TEST_CASE("load_config names a file it cannot read") {
  TempDir dir;
  try {
    load_config(dir.path / "missing.toml");
    FAIL("a missing file loaded");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("missing.toml") && Catch::Contains("not found"));
  }
  try {
    load_config(dir.path / "configs");
    FAIL("a folder loaded");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("configs") && Catch::Contains("not a regular file"));
  }
  fs::path bad = dir.path / "bad.toml";
  {
    std::ofstream out(bad);
    out << "[model]\npath = \n";
  }
  try {
    load_config(bad);
    FAIL("a bad file loaded");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::StartsWith(bad.string() + ":2:"));
  }
}

TEST_CASE("load_config refuses a file larger than a config can be before reading it") {
  TempDir dir;
  fs::path big = dir.path / "big.toml";
  {
    std::ofstream out(big, std::ios::binary);
    out << "[model]\npath = \"m.gguf\"\n" << std::string(4u << 20, '#');
  }
  try {
    load_config(big);
    FAIL("a 4 MiB file loaded");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) ==
          "config file " + big.string() + ": 4194328 bytes; a config is at most 4194304 bytes");
  }
}
