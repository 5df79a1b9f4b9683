// Hugging Face GPT-2 folders: a small hand-made one read in GGUF terms (names, transposed Conv1D
// weights, hyper-parameters, both kinds of vocabulary), and every broken config.json, vocab.json,
// merges.txt or tensor table refused with one clear error naming the file.
#include <map>

#include "core/model/hf_config.h"
#include "core/model/hf_model.h"
#include "model_test_util.h"

using namespace semline;
using semline::test::check_message;
using semline::test::error_of;
using semline::test::safetensors_of;
using semline::test::text;

namespace {

const char* kConfig = R"({"model_type": "gpt2", "n_embd": 4, "n_layer": 1, "n_head": 2, "n_positions": 8,
  "vocab_size": 3, "n_inner": null, "activation_function": "gelu", "layer_norm_epsilon": 1e-5,
  "bos_token_id": null, "eos_token_id": 2})";

// Safetensors shapes of a GPT-2 with n_embd 4, 1 layer, 8 positions, vocabulary 3, n_inner 16.
std::map<std::string, std::vector<int64_t>> gpt2_shapes() {
  return {{"transformer.wte.weight", {3, 4}},           {"transformer.wpe.weight", {8, 4}},
          {"transformer.ln_f.weight", {4}},             {"transformer.ln_f.bias", {4}},
          {"transformer.h.0.ln_1.weight", {4}},         {"transformer.h.0.ln_1.bias", {4}},
          {"transformer.h.0.attn.c_attn.weight", {4, 12}}, {"transformer.h.0.attn.c_attn.bias", {12}},
          {"transformer.h.0.attn.c_proj.weight", {4, 4}}, {"transformer.h.0.attn.c_proj.bias", {4}},
          {"transformer.h.0.ln_2.weight", {4}},         {"transformer.h.0.ln_2.bias", {4}},
          {"transformer.h.0.mlp.c_fc.weight", {4, 16}},  {"transformer.h.0.mlp.c_fc.bias", {16}},
          {"transformer.h.0.mlp.c_proj.weight", {16, 4}}, {"transformer.h.0.mlp.c_proj.bias", {4}}};
}

// A folder holding the given files (absent ones are not written).
struct Folder {
  test::TempDir dir;
  explicit Folder(const std::string& config = kConfig, const std::string& vocab = R"({"a": 0, "b": 1, "\n": 2})",
                  const std::map<std::string, std::vector<int64_t>>& shapes = gpt2_shapes()) {
    test::write_file(dir / "config.json", text(config));
    if (!vocab.empty()) test::write_file(dir / "vocab.json", text(vocab));
    test::write_file(dir / "model.safetensors", safetensors_of(shapes));
  }
  std::string refusal() const { return error_of([&] { hf::open_folder(dir.path()); }); }
};

std::string config_with(const std::string& key_value) {
  std::string c = kConfig;
  return c.substr(0, c.size() - 1) + ", " + key_value + "}";
}

}  // namespace

TEST_CASE("hf: a GPT-2 folder reads as a gpt2 model in GGUF terms, Conv1D weights transposed") {
  Folder f;
  auto m = hf::open_folder(f.dir.path());
  CHECK(m->get_string("general.architecture") == "gpt2");
  CHECK(m->get_u64("gpt2.context_length") == 8);
  CHECK(m->get_u64("gpt2.embedding_length") == 4);
  CHECK(m->get_u64("gpt2.feed_forward_length") == 16);  // n_inner null: 4 n_embd
  CHECK(m->get_u64("gpt2.block_count") == 1);
  CHECK(m->get_u64("gpt2.attention.head_count") == 2);
  CHECK(m->get_f64("gpt2.attention.layer_norm_epsilon") == Approx(1e-5));
  CHECK(m->get_string("gpt2.feed_forward_activation") == "gelu");
  CHECK(m->get_string("tokenizer.ggml.model") == "char");
  const MetaValue* tokens = m->meta("tokenizer.ggml.tokens");
  REQUIRE(tokens);
  CHECK(tokens->strings == std::vector<std::string_view>{"a", "b", "\n"});
  CHECK(m->get_u64("tokenizer.ggml.eos_token_id") == 2);
  CHECK_FALSE(m->meta("tokenizer.ggml.bos_token_id"));  // config.json names none
  CHECK(m->tensors().size() == 16);

  // Values name their tensor by its place in the (sorted) map the file was written from.
  const auto shapes = gpt2_shapes();
  const int qkv_index = static_cast<int>(std::distance(shapes.begin(), shapes.find("transformer.h.0.attn.c_attn.weight")));
  const Tensor* qkv = m->weight("blk.0.attn_qkv.weight");
  REQUIRE(qkv);
  CHECK(tensor_shape_string(*qkv) == "F32 [4, 12]");  // {n_in, n_out}: rows of n_embd
  // Row o of the transposed matrix is column o of the stored [in][out] one.
  for (int64_t o = 0; o < 12; ++o)
    for (int64_t i = 0; i < 4; ++i) REQUIRE(qkv->data<float>()[o * 4 + i] == static_cast<float>(qkv_index * 1000 + i * 12 + o));
  const int wte_index = static_cast<int>(std::distance(shapes.begin(), shapes.find("transformer.wte.weight")));
  const Tensor* wte = m->weight("token_embd.weight");
  CHECK(tensor_shape_string(*wte) == "F32 [4, 3]");
  CHECK(wte->data<float>()[5] == static_cast<float>(wte_index * 1000 + 5));  // a view, as stored
  for (const char* name : {"position_embd.weight", "output_norm.weight", "output_norm.bias", "blk.0.attn_norm.bias",
                           "blk.0.attn_qkv.bias", "blk.0.attn_output.weight", "blk.0.attn_output.bias",
                           "blk.0.ffn_norm.weight", "blk.0.ffn_up.weight", "blk.0.ffn_up.bias",
                           "blk.0.ffn_down.weight", "blk.0.ffn_down.bias"})
    CHECK(m->weight(name));
  CHECK(tensor_shape_string(*m->weight("blk.0.ffn_down.weight")) == "F32 [16, 4]");
  CHECK(m->format().find("4 Conv1D weights transposed") != std::string::npos);

  // Opened through the path a command takes: the folder, or its config.json.
  CHECK(open_model_file(f.dir.path())->tensors().size() == 16);
  CHECK(open_model_file(f.dir / "config.json")->path() == f.dir.path().string());
}

TEST_CASE("hf: with merges.txt the vocabulary is GPT-2 byte-level BPE metadata, bos/eos are control tokens") {
  Folder f;
  test::write_file(f.dir / "merges.txt", text("#version: 0.2\na b\nab \xC4\x8A\n"));
  auto m = hf::open_folder(f.dir.path());
  CHECK(m->get_string("tokenizer.ggml.model") == "gpt2");
  CHECK(m->get_string("tokenizer.ggml.pre") == "gpt-2");
  const MetaValue* merges = m->meta("tokenizer.ggml.merges");
  REQUIRE(merges);
  CHECK(merges->strings == std::vector<std::string_view>{"a b", "ab \xC4\x8A"});
  const MetaValue* types = m->meta("tokenizer.ggml.token_type");
  REQUIRE(types);
  CHECK(types->at<int32_t>(0) == 1);
  CHECK(types->at<int32_t>(2) == 3);
  check_message(error_of([&] {
                  test::write_file(f.dir / "merges.txt", text("a b\nabc\n"));
                  hf::open_folder(f.dir.path());
                }),
                {"merges.txt: line 2 is \"abc\", expected two pieces separated by one space"});
}

TEST_CASE("hf: config.json refusals name the key and what would be valid") {
  check_message(Folder("{\"n_embd\": 4,").refusal(), {"config.json: not valid JSON"});
  check_message(Folder("[]").refusal(), {"config.json: JSON array, expected an object"});
  check_message(Folder(R"({"n_layer": 1, "n_head": 2, "n_positions": 8, "vocab_size": 3})").refusal(),
                {"config.json: key 'n_embd' is missing"});
  check_message(Folder(config_with(R"("activation_function": "relu")")).refusal(),
                {"activation_function 'relu' is not supported", "valid: gelu (exact), gelu_new, gelu_pytorch_tanh"});
  std::string c = kConfig;
  check_message(Folder(c.replace(c.find("\"n_head\": 2"), 11, "\"n_head\": 0")).refusal(),
                {"n_head = 0 must be a positive integer"});
  check_message(Folder(config_with(R"("model_type": "bloom")")).refusal(),
                {"model_type \"bloom\" is not served", "\"qwen3\" (Qwen3ForCausalLM)"});
  check_message(Folder(config_with(R"("scale_attn_weights": false)")).refusal(), {"scale_attn_weights = false"});
  check_message(Folder(config_with(R"("layer_norm_epsilon": -1)")).refusal(), {"layer_norm_epsilon = -1 must be a positive"});
  check_message(Folder(config_with(R"("eos_token_id": 7)")).refusal(), {"eos_token_id 7 is outside the vocabulary of 3"});
  // gelu_new is GPT2Config's default and the tanh approximation.
  Folder tanh(config_with(R"("activation_function": "gelu_new")"));
  CHECK(hf::open_folder(tanh.dir.path())->get_string("gpt2.feed_forward_activation") == "gelu_tanh");
}

TEST_CASE("hf: vocab.json and tensor table refusals") {
  check_message(Folder(kConfig, R"({"a": 0, "b": 1, "c": 1})").refusal(), {"vocab.json: id 1 is given to both"});
  check_message(Folder(kConfig, R"({"a": 0, "b": 1, "c": 5})").refusal(), {"\"c\" has id 5, outside 0..2"});
  check_message(Folder(kConfig, R"({"a": 0, "b": 1})").refusal(), {"vocab.json: 2 tokens, but transformer.wte.weight has 3 rows"});
  check_message(Folder(kConfig, R"({"a": 0, "bc": 1, "d": 2})").refusal(),
                {"token \"bc\" (id 1) is not one UTF-8 character, and there is no merges.txt"});
  check_message(Folder(config_with(R"("vocab_size": 4)")).refusal(), {"vocab_size 4 in config.json, but the token embedding (transformer.wte.weight) has 3 rows"});

  auto shapes = gpt2_shapes();
  shapes["transformer.h.0.attn.q_proj.weight"] = {4, 4};
  check_message(Folder(kConfig, R"({"a": 0, "b": 1, "\n": 2})", shapes).refusal(),
                {"model.safetensors: tensor 'transformer.h.0.attn.q_proj.weight' is not part of the GPT-2 layout"});
  shapes = gpt2_shapes();
  shapes["transformer.h.1.ln_1.weight"] = {4};
  check_message(Folder(kConfig, R"({"a": 0, "b": 1, "\n": 2})", shapes).refusal(),
                {"belongs to block 1, but config.json has n_layer 1"});
  shapes = gpt2_shapes();
  shapes["transformer.h.0.mlp.c_fc.weight"] = {64};
  check_message(Folder(kConfig, R"({"a": 0, "b": 1, "\n": 2})", shapes).refusal(),
                {"(blk.0.ffn_up.weight) has 1 dimensions; a Conv1D weight has 2"});
  shapes = gpt2_shapes();
  shapes["wte.weight"] = {3, 4};  // GPT2Model's names next to GPT2LMHeadModel's
  check_message(Folder(kConfig, R"({"a": 0, "b": 1, "\n": 2})", shapes).refusal(), {"both map to token_embd.weight"});
  shapes = gpt2_shapes();
  shapes["transformer.h.0.attn.bias"] = {1, 1, 8, 8};  // a causal-mask buffer: skipped
  CHECK(hf::open_folder(Folder(kConfig, R"({"a": 0, "b": 1, "\n": 2})", shapes).dir.path())->tensors().size() == 16);

  test::TempDir empty;
  check_message(error_of([&] { hf::open_folder(empty.path()); }), {"no model.safetensors"});
}

TEST_CASE("hf: is_one_utf8_char takes exactly one well-formed character") {
  CHECK(hf::is_one_utf8_char("a"));
  CHECK(hf::is_one_utf8_char("\n"));
  CHECK(hf::is_one_utf8_char("\xC3\xA9"));
  CHECK(hf::is_one_utf8_char("\xF0\x9F\x98\x80"));
  CHECK_FALSE(hf::is_one_utf8_char(""));
  CHECK_FALSE(hf::is_one_utf8_char("ab"));
  CHECK_FALSE(hf::is_one_utf8_char("\xC3"));          // truncated
  CHECK_FALSE(hf::is_one_utf8_char("\xC0\x80"));      // overlong
  CHECK_FALSE(hf::is_one_utf8_char("\xED\xA0\x80"));  // a surrogate
}
