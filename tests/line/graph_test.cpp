// The graph: what a config builds for a model, and every way a config or a model can be wrong.
#include <catch2/catch.hpp>

#include <map>

#include "common/test_plugins.h"
#include "core/config/config.h"
#include "core/graph/graph.h"
#include "core/model/gguf.h"
#include "core/model/synth.h"

using namespace semline;
using Catch::Matchers::Contains;

namespace {

const std::string kStories = std::string(SEMLINE_MODELS_DIR) + "/gguf/stories260K.gguf";

Config config_with(const std::string& extra) {
  return parse_config("[model]\npath = \"" + kStories + "\"\n" + extra, "test.toml");
}

// The real model with one tensor reshaped, hidden or added (a copy of output_norm.weight), or
// another architecture name.
class AlteredModel : public ModelView {
 public:
  explicit AlteredModel(const ModelView& base) : base_(base) {}
  std::string hide, reshape, arch, extra;
  std::map<std::string, MetaValue, std::less<>> meta_set;  // metadata added or replaced
  const MetaValue* meta(std::string_view key) const override {
    if (auto it = meta_set.find(key); it != meta_set.end()) return &it->second;
    if (key == "general.architecture" && !arch.empty()) {
      fake_.type = MetaType::STRING;
      fake_.str = arch;
      return &fake_;
    }
    return base_.meta(key);
  }
  const Tensor* weight(std::string_view name) const override {
    if (name == hide) return nullptr;
    if (name == extra) return base_.weight("output_norm.weight");
    const Tensor* t = base_.weight(name);
    if (t && name == reshape) {
      changed_ = *t;
      changed_.ne[1] /= 2;
      return &changed_;
    }
    return t;
  }
  std::string path() const override { return "altered.gguf"; }
  std::vector<std::string_view> meta_keys() const override {
    std::vector<std::string_view> keys = base_.meta_keys();
    for (const auto& kv : meta_set)
      if (!base_.meta(kv.first)) keys.push_back(kv.first);
    return keys;
  }
  std::vector<std::string_view> weight_names() const override {
    std::vector<std::string_view> names;
    for (std::string_view n : base_.weight_names())
      if (n != hide) names.push_back(n);
    if (!extra.empty()) names.push_back(extra);
    return names;
  }

 private:
  const ModelView& base_;
  mutable MetaValue fake_;
  mutable Tensor changed_;
};

std::string graph_error(const Config& c, const ModelView& m) {
  try {
    build_graph(c, m, testing::built_plugins());
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// A metadata value of type U32, as the GGUF reader gives it.
MetaValue u32(uint64_t v) {
  MetaValue m;
  m.type = MetaType::U32;
  m.u = v;
  m.i = static_cast<int64_t>(v);
  m.f = static_cast<double>(v);
  return m;
}

}  // namespace

TEST_CASE("the default line for stories260K: every station placed, blocks grouped") {
  auto model = gguf::GgufFile::open(kStories);
  PipelineGraph g = build_graph(config_with(""), *model, testing::built_plugins());
  CHECK(g.hp.n_layer == 5);
  CHECK(g.hp.n_head_kv == 4);
  CHECK(g.tokenizer.impl->entry.variant == "spm");
  REQUIRE(g.blocks.size() == 5);
  CHECK(g.blocks[3][0].op.impl->entry.variant == "flash");  // the template's default
  CHECK(g.blocks[3][0].op.tensors.size() == 4);
  CHECK(g.head.tensors.size() == 2);  // output.weight is in the file, token_embd too
  CHECK(g.sampler_chain.size() == 1);
  CHECK(g.backends == std::vector<std::string>{"cpu"});
  CHECK_THAT(g.to_text(), Contains("blocks 0-4") && Contains("attention flash@cpu"));
  CHECK_THAT(g.to_mermaid(), Contains("flowchart TD") && Contains("subgraph"));
}

TEST_CASE("layer overrides place variants per block range") {
  auto model = gguf::GgufFile::open(kStories);
  PipelineGraph g = build_graph(config_with("[stages]\nattention = { variant = \"flash\", block = 32 }\n"
                                            "[[stages.layers]]\nrange = \"0-1\"\nattention = { variant = \"dense\" }\n"),
                                *model, testing::built_plugins());
  CHECK(g.blocks[0][0].op.impl->entry.variant == "dense");
  CHECK(g.blocks[1][0].op.impl->entry.variant == "dense");
  CHECK(g.blocks[2][0].op.impl->entry.variant == "flash");
  CHECK(std::get<int64_t>(g.blocks[4][0].op.params.values.at("block")) == 32);
  CHECK_THAT(g.to_text(), Contains("blocks 0-1") && Contains("blocks 2-4"));
}

TEST_CASE("a station chosen by its template name, apart from the other stations of its kind") {
  auto model = gguf::GgufFile::open(kStories);
  PipelineGraph g = build_graph(config_with("[stages]\nffn_norm = { variant = \"layer\" }\n[[stages.layers]]\n"
                                            "range = \"4\"\nattn_norm = { variant = \"layer\" }\n"),
                                *model, testing::built_plugins());
  for (size_t l = 0; l < g.blocks.size(); ++l) {
    INFO("block " << l);
    CHECK(g.blocks[l][0].norm.impl->entry.variant == (l == 4 ? "layer" : "rms"));  // attn_norm
    CHECK(g.blocks[l][1].norm.impl->entry.variant == "layer");                      // ffn_norm
  }
  CHECK(g.output_norm.impl->entry.variant == "rms");
  CHECK_THAT(g.blocks[0][1].norm.chosen_by, Contains("test.toml:4:"));
}

TEST_CASE("config mistakes are named with file:line:column and what would be valid") {
  auto model = gguf::GgufFile::open(kStories);
  SECTION("unknown variant") {
    std::string e = graph_error(config_with("[stages]\nattention = { variant = \"flsh\" }\n"), *model);
    CHECK_THAT(e, Contains("test.toml:4:") && Contains("unknown variant 'flsh' for attention on cpu") &&
                      Contains("did you mean 'flash'") && Contains("dense"));
  }
  SECTION("unknown parameter") {
    std::string e = graph_error(config_with("[stages]\nattention = { variant = \"flash\", blok = 8 }\n"), *model);
    CHECK_THAT(e, Contains("test.toml:4:") && Contains("unknown parameter 'blok'") && Contains("did you mean 'block'"));
  }
  SECTION("parameter of the wrong type") {
    std::string e = graph_error(config_with("[stages]\nattention = { variant = \"flash\", block = \"big\" }\n"), *model);
    CHECK_THAT(e, Contains("test.toml:4:") && Contains("must be of type int"));
  }
  SECTION("a parameter out of its range names the key, the value and the range") {
    std::string e = graph_error(config_with("[stages]\nsampler = { chain = [\"top_p\", \"draw\"], top_p = 1.5 }\n"), *model);
    CHECK_THAT(e, Contains("test.toml:4:") && Contains("stages.sampler (top_p): top_p = 1.5 is out of range; expected a number in 0.0..1.0"));
    e = graph_error(config_with("[stages]\nattention = { variant = \"flash\", block = 0 }\n"), *model);
    CHECK_THAT(e, Contains("test.toml:4:") && Contains("attention: block = 0 is out of range; expected an integer in 1..4096 (keys per tile)"));
  }
  SECTION("layer range past the last block") {
    std::string e = graph_error(config_with("[[stages.layers]]\nrange = \"3-9\"\nattention = { variant = \"dense\" }\n"), *model);
    CHECK_THAT(e, Contains("test.toml:4:") && Contains("past the model's last block 4"));
  }
  SECTION("a [stages] table naming neither a stage kind nor a station of the template") {
    std::string e = graph_error(config_with("[stages]\natention = { variant = \"flash\" }\n"), *model);
    CHECK_THAT(e, Contains("test.toml:4:1: unknown stage 'atention' in [stages]") && Contains("did you mean 'attention'") &&
                      Contains("a station of the llama template (token_embd, attn_norm, attention, ffn_norm, ffn, output_norm, output)"));
    e = graph_error(config_with("[stages.samplr]\nseed = 1\n"), *model);
    CHECK_THAT(e, Contains("test.toml:3:9: unknown stage 'samplr'") && Contains("did you mean 'sampler'"));
    Config over = config_with("");
    apply_override(over, "stages.atention.variant=flash");
    CHECK_THAT(graph_error(over, *model), Contains(":1:8: unknown stage 'atention'"));
    // Per layer, only the stations of a block.
    e = graph_error(config_with("[[stages.layers]]\nrange = \"0\"\noutput_norm = { variant = \"rms\" }\n"), *model);
    CHECK_THAT(e, Contains("test.toml:5:1: unknown stage 'output_norm' in [[stages.layers]]") &&
                      Contains("(attn_norm, attention, ffn_norm, ffn)"));
  }
  SECTION("unknown backend") {
    std::string e = graph_error(config_with("[runtime]\nbackend = \"cpux\"\n"), *model);
    CHECK_THAT(e, Contains("cpux") && Contains("cpu"));
  }
  SECTION("a sampler parameter whose sampler is not in the chain") {
    std::string e = graph_error(config_with("[stages]\nsampler = { chain = [\"greedy\"], top_k = 5 }\n"), *model);
    CHECK_THAT(e, Contains("test.toml:4:") && Contains("top_k") && Contains("not in the chain"));
  }
  SECTION("an unknown sampler in the chain") {
    std::string e = graph_error(config_with("[stages]\nsampler = { chain = [\"gredy\"] }\n"), *model);
    CHECK_THAT(e, Contains("unknown variant 'gredy' for sampler") && Contains("did you mean 'greedy'"));
  }
}

TEST_CASE("a StableLM file with use_parallel_residual = true (StableLM 2 12B) is refused, false is the plain block") {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / "semline-graph-stablelm.gguf";
  SynthSpec spec = synth_preset("tiny");
  spec.arch = "stablelm";
  synth_write(spec, path);
  auto base = gguf::GgufFile::open(path.string());
  AlteredModel m(*base);
  MetaValue v;
  v.type = MetaType::BOOL;
  v.u = 0;
  m.meta_set["stablelm.use_parallel_residual"] = v;
  CHECK(graph_error(config_with(""), m) == "no error");
  m.meta_set["stablelm.use_parallel_residual"].u = 1;
  CHECK_THAT(graph_error(config_with(""), m),
             Contains("stablelm.use_parallel_residual = true (StableLM 2 12B: attention and feed-forward both read the "
                      "block's input) is not supported"));
  std::filesystem::remove(path);
}

TEST_CASE("model mistakes: unknown architecture, missing tensor, wrong shape") {
  auto base = gguf::GgufFile::open(kStories);
  AlteredModel m(*base);
  SECTION("architecture") {
    m.arch = "lama";
    CHECK_THAT(graph_error(config_with(""), m), Contains("architecture 'lama' has no template") && Contains("did you mean 'llama'"));
  }
  SECTION("missing tensor") {
    m.hide = "blk.2.attn_k.weight";
    CHECK_THAT(graph_error(config_with(""), m), Contains("tensor 'blk.2.attn_k.weight'") && Contains("is missing"));
  }
  SECTION("missing feed-forward weight: every ffn variant says what it lacks") {
    m.hide = "blk.2.ffn_up.weight";
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("block 2 ffn: no ffn implementation on backend 'cpu' can serve this model") &&
                   Contains("dense: the model has no 'up' weight") && Contains("moe: the model has no experts"));
  }
  SECTION("a tensor no station binds: the model would be half understood") {
    m.extra = "blk.0.attn_q_norm.weight";
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("altered.gguf: tensor 'blk.0.attn_q_norm.weight' is bound by no station of the llama template "
                        "(plugin 'archs'); running without it would compute another model"));
  }
  SECTION("a metadata key of the arch the template does not know, or a RoPE scaling it does not compute") {
    MetaValue v;
    v.type = MetaType::F32;
    v.f = 30.0;
    m.meta_set["llama.attn_logit_softcapping"] = v;
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("altered.gguf: metadata key 'llama.attn_logit_softcapping' is not one the llama template "
                        "(plugin 'archs') understands; it may change what the model computes. Known: context_length"));
    m.meta_set.clear();
    MetaValue yarn;
    yarn.type = MetaType::STRING;
    yarn.str = "yarn";
    m.meta_set["llama.rope.scaling.type"] = yarn;
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("llama.rope.scaling.type = 'yarn' is not supported; semline computes none and linear"));
  }
  SECTION("wrong shape") {
    m.reshape = "blk.1.attn_k.weight";
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("blk.1.attn_k.weight") && Contains("[64, 16]") && Contains("expected [64, 32]"));
  }
  SECTION("expert counts: both or neither, and used <= count") {
    m.meta_set["llama.expert_count"] = u32(8);
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("altered.gguf: metadata has llama.expert_count but not llama.expert_used_count"));
    m.meta_set["llama.expert_used_count"] = u32(9);
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("llama.expert_used_count = 9 must be 1..llama.expert_count (8)"));
    m.meta_set["llama.expert_used_count"] = u32(2);  // a MoE count on a dense file: no stacks to bind
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("block 0 ffn: no ffn implementation on backend 'cpu' can serve this model") &&
                   Contains("dense: the model has 8 experts") && Contains("moe: the model has no 'router' weight"));
    m.meta_set.erase("llama.expert_count");
    CHECK_THAT(graph_error(config_with(""), m), Contains("has llama.expert_used_count but not llama.expert_count"));
  }
  SECTION("untied output is optional: the head falls back to the embedding") {
    m.hide = "output.weight";
    PipelineGraph g = build_graph(config_with(""), m, testing::built_plugins());
    CHECK(g.head.tensors.size() == 1);
  }
}

TEST_CASE("sampler parameters: plain keys reach every member that declares them, a member's table only it") {
  auto model = gguf::GgufFile::open(kStories);
  auto param = [](const GraphNode& n, const std::string& k) { return param_value_string(n.params.values.at(k)); };
  const PipelineGraph g = build_graph(
      config_with("[stages.sampler]\nchain = [\"repetition_penalty\", \"frequency_penalty\", \"top_k\", \"draw\"]\n"
                  "repeat_last_n = 32\ntop_k = 7\n"
                  "frequency_penalty = { repeat_last_n = 8, frequency_penalty = 0.5 }\n"
                  "[stages.sampler.draw]\nseed = 9\n"),
      *model, testing::built_plugins());
  REQUIRE(g.sampler_chain.size() == 4);
  CHECK(param(g.sampler_chain[0], "repeat_last_n") == "32");  // the plain key
  CHECK(param(g.sampler_chain[1], "repeat_last_n") == "8");   // its own table wins
  CHECK(param(g.sampler_chain[1], "frequency_penalty") == "0.5");
  CHECK(param(g.sampler_chain[2], "top_k") == "7");
  CHECK(param(g.sampler_chain[3], "seed") == "9");
  // --set reaches a member's table too.
  Config over = config_with("[stages]\nsampler = { chain = [\"top_k\", \"draw\"] }\n");
  apply_override(over, "stages.sampler.top_k.top_k=3");
  CHECK(param(build_graph(over, *model, testing::built_plugins()).sampler_chain[0], "top_k") == "3");

  SECTION("a table for a sampler not in the chain") {
    CHECK_THAT(graph_error(config_with("[stages]\nsampler = { chain = [\"greedy\"], top_p = { top_p = 0.5 } }\n"), *model),
               Contains("test.toml:4:") && Contains("stages.sampler.top_p: 'top_p' is not in the chain [greedy]"));
  }
  SECTION("a parameter its member does not declare") {
    CHECK_THAT(graph_error(config_with("[stages]\nsampler = { chain = [\"top_k\", \"draw\"], draw = { sed = 1 } }\n"), *model),
               Contains("unknown parameter 'sed' for stages.sampler (draw)") && Contains("did you mean 'seed'"));
  }
  SECTION("a list parameter gets every element checked") {
    CHECK_THAT(graph_error(config_with("[stages]\nsampler = { chain = [\"content_filter\", \"greedy\"], ban_ids = [3, -4] }\n"),
                           *model),
               Contains("stages.sampler (content_filter): ban_ids = [3, -4] is out of range; expected an integer >= 0 "
                        "for each element"));
    CHECK_THAT(graph_error(config_with("[stages]\nsampler = { chain = [\"content_filter\", \"greedy\"], ban_ids = [1.5] }\n"),
                           *model),
               Contains("ban_ids = [1.5] must be of type int list"));
    CHECK_THAT(graph_error(config_with("[stages]\nsampler = { chain = [\"content_filter\", \"greedy\"], ban = [1] }\n"),
                           *model),
               Contains("ban = [1] must be of type string list"));
  }
}

TEST_CASE("int and float list parameters: converted where TOML is narrower, each element in range") {
  const std::vector<ParamSpec> schema = {
      {"ids", ParamType::IntList, std::vector<int64_t>{}, "ids", 0.0, 10.0, {}},
      {"weights", ParamType::FloatList, std::vector<double>{1.0}, "weights", -1.0, 1.0, {}}};
  auto given = [](std::map<std::string, ParamValue> values) {
    std::map<std::string, ConfigValue> out;
    for (auto& [k, v] : values) out[k] = ConfigValue{v, SourcePos{"t.toml", 3, 1}};
    return out;
  };
  Params p = validate_params(given({{"ids", std::vector<int64_t>{1, 10}}, {"weights", std::vector<int64_t>{0, 1}}}),
                             schema, "x");
  CHECK(p.get_int_list("ids") == std::vector<int64_t>{1, 10});
  CHECK(p.get_float_list("weights") == std::vector<double>{0.0, 1.0});  // integers taken as floats
  p = validate_params(given({{"ids", std::vector<std::string>{}}, {"weights", std::vector<double>{-0.5}}}), schema, "x");
  CHECK(p.get_int_list("ids").empty());  // TOML's [] has no element type
  CHECK(p.get_float_list("weights") == std::vector<double>{-0.5});
  auto error = [&](std::map<std::string, ParamValue> values) {
    try {
      validate_params(given(std::move(values)), schema, "x");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error({{"weights", std::vector<double>{0.5, 1.5}}}) ==
        "t.toml:3:1: x: weights = [0.5, 1.5] is out of range; expected a number in -1.0..1.0 for each element (weights)");
  CHECK(error({{"ids", std::vector<double>{1.0}}}) == "t.toml:3:1: x: ids = [1.0] must be of type int list (ids)");
  CHECK(error({{"ids", int64_t{1}}}) == "t.toml:3:1: x: ids = 1 must be of type int list (ids)");
}

TEST_CASE("Mamba and Jamba hyper-parameters: heads and feed-forward in a Mamba, Jamba's layer patterns") {
  const auto dir = std::filesystem::temp_directory_path();
  SynthSpec spec = synth_preset("tiny");
  spec.arch = "mamba";
  synth_write(spec, dir / "semline-graph-mamba.gguf");
  spec.arch = "jamba";
  spec.layers = 4;
  spec.experts = 4;
  spec.experts_used = 2;
  synth_write(spec, dir / "semline-graph-jamba.gguf");
  {
    auto base = gguf::GgufFile::open((dir / "semline-graph-mamba.gguf").string());
    AlteredModel m(*base);
    CHECK(graph_error(config_with(""), m) == "no error");
    m.meta_set["mamba.attention.head_count"] = u32(4);
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("mamba.attention.head_count = 4; a Mamba block has no attention heads and no feed-forward"));
    m.meta_set["mamba.attention.head_count"] = u32(0);
    m.meta_set["mamba.ssm.conv_kernel"] = u32(1);
    CHECK_THAT(graph_error(config_with(""), m), Contains("mamba.ssm.conv_kernel = 1 must be 2 or more"));
  }
  {
    auto base = gguf::GgufFile::open((dir / "semline-graph-jamba.gguf").string());
    AlteredModel m(*base);
    CHECK(graph_error(config_with(""), m) == "no error");
    // The kv heads as three layers: not one per block.
    const std::vector<uint32_t> three = {0, 2, 0}, irregular = {0, 2, 2, 0}, mixed = {0, 2, 0, 1};
    auto array = [](const std::vector<uint32_t>& v) {
      MetaValue a;
      a.type = MetaType::ARRAY;
      a.elem = MetaType::U32;
      a.count = v.size();
      a.raw = reinterpret_cast<const unsigned char*>(v.data());
      return a;
    };
    m.meta_set["jamba.attention.head_count_kv"] = array(three);
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("jamba.attention.head_count_kv must be an array of 4 integers (block_count)"));
    m.meta_set["jamba.attention.head_count_kv"] = array(irregular);
    CHECK_THAT(graph_error(config_with(""), m),
               Contains("jamba.attention.head_count_kv: on layers that are not one offset and period apart"));
    m.meta_set["jamba.attention.head_count_kv"] = array(mixed);
    CHECK_THAT(graph_error(config_with(""), m), Contains("every attention layer must have the same kv heads (2)"));
    // An expert layer forced dense is refused by name; the dense layers are dense.
    m.meta_set.erase("jamba.attention.head_count_kv");
    CHECK_THAT(graph_error(config_with("[[stages.layers]]\nrange = \"0\"\nffn = { variant = \"dense\" }\n"), m),
               Contains("the model has 4 experts on this layer"));
  }
  std::filesystem::remove(dir / "semline-graph-mamba.gguf");
  std::filesystem::remove(dir / "semline-graph-jamba.gguf");
}
