// Hugging Face decoder folders (LlamaForCausalLM, Qwen2/3, Phi-3, Mistral, Gemma 2, StarCoder2,
// StableLM, GPT-NeoX) and tokenizer.json,
// small hand-made ones: llama's q/k rows reordered so that llama.cpp's RoPE on adjacent pairs
// computes the attention scores Hugging Face's rotate-half RoPE computes (float64), Llama 3.1's
// rope scaling turned into rope_freqs as llama.cpp's converter does, sharded weights, the
// tokenizer's special tokens and chat template, and every refusal naming its file and key.
#include <cmath>
#include <map>

#include "core/model/hf_model.h"
#include "model_test_util.h"

using namespace semline;
using semline::test::check_message;
using semline::test::error_of;
using semline::test::safetensors_of;
using semline::test::text;

namespace {

// A llama of hidden size 8: 2 heads of 4, 1 kv head, vocabulary 6.
const char* kLlama = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
  "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
  "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "vocab_size": 6,
  "hidden_act": "silu", "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2})";

std::map<std::string, std::vector<int64_t>> llama_shapes() {
  return {{"model.embed_tokens.weight", {6, 8}},
          {"model.layers.0.self_attn.q_proj.weight", {8, 8}},
          {"model.layers.0.self_attn.k_proj.weight", {4, 8}}};
}

// A byte-level BPE of 6 tokens with Llama 3's pre-tokenizer, two of them special.
const char* kTokenizer = R"({"version": "1.0", "added_tokens": [
  {"id": 1, "content": "<|begin|>", "special": true}, {"id": 2, "content": "<|end|>", "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin|>", "type_id": 0}},
    {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {}},
  "model": {"type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false, "byte_fallback": false,
    "ignore_merges": true, "vocab": {"a": 0, "<|begin|>": 1, "<|end|>": 2, "b": 3, "ab": 4, "\u0120": 5},
    "merges": [["a", "b"]]}})";

struct Folder {
  test::TempDir dir;
  explicit Folder(const std::string& config = kLlama, const std::map<std::string, std::vector<int64_t>>& shapes = llama_shapes(),
                  const std::string& tokenizer = kTokenizer) {
    test::write_file(dir / "config.json", text(config));
    test::write_file(dir / "model.safetensors", safetensors_of(shapes));
    if (!tokenizer.empty()) test::write_file(dir / "tokenizer.json", text(tokenizer));
  }
  std::string refusal() const { return error_of([&] { hf::open_folder(dir.path()); }); }
};

std::string with(std::string json, const std::string& key_value) {
  return json.substr(0, json.rfind('}')) + ", " + key_value + "}";
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

// Rotates each head's pairs by the angle of `pos`: Hugging Face's (i, i + half) or llama.cpp's
// (2i, 2i + 1), pair i at frequency base^(-2i / head).
std::vector<double> rope(std::vector<double> q, int64_t head, int64_t pos, bool halves) {
  const int64_t half = head / 2;
  for (size_t h0 = 0; h0 < q.size(); h0 += static_cast<size_t>(head))
    for (int64_t i = 0; i < half; ++i) {
      const double a = static_cast<double>(pos) * std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(head));
      const size_t x = h0 + static_cast<size_t>(halves ? i : 2 * i), y = h0 + static_cast<size_t>(halves ? i + half : 2 * i + 1);
      const double u = q[x], v = q[y];
      q[x] = u * std::cos(a) - v * std::sin(a);
      q[y] = v * std::cos(a) + u * std::sin(a);
    }
  return q;
}

std::vector<double> times(const float* w, int64_t rows, const std::vector<double>& x) {
  std::vector<double> y(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < x.size(); ++c) y[static_cast<size_t>(r)] += w[r * static_cast<int64_t>(x.size()) + static_cast<int64_t>(c)] * x[c];
  return y;
}

// q . k of each q head against its kv head (2 q heads share the one kv head).
std::vector<double> scores(const std::vector<double>& q, const std::vector<double>& k, int64_t head) {
  std::vector<double> s;
  for (size_t h = 0; h * static_cast<size_t>(head) < q.size(); ++h) {
    double d = 0;
    for (int64_t i = 0; i < head; ++i) d += q[h * static_cast<size_t>(head) + static_cast<size_t>(i)] * k[static_cast<size_t>(i)];
    s.push_back(d);
  }
  return s;
}

}  // namespace

TEST_CASE("hf: llama's q/k rows are reordered so llama.cpp's pairwise RoPE gives Hugging Face's scores") {
  Folder f;
  auto m = hf::open_folder(f.dir.path());
  CHECK(m->format().find("2 q/k maps permuted") != std::string::npos);
  const Tensor* q = m->weight("blk.0.attn_q.weight");
  const Tensor* k = m->weight("blk.0.attn_k.weight");
  REQUIRE(q);
  REQUIRE(k);
  // The stored values: tensor index (in name order: embed 0, k 1, q 2) * 1000 + element.
  std::vector<float> hf_q(64), hf_k(32);
  for (size_t i = 0; i < hf_q.size(); ++i) hf_q[i] = 2000.0f + static_cast<float>(i);
  for (size_t i = 0; i < hf_k.size(); ++i) hf_k[i] = 1000.0f + static_cast<float>(i);
  const std::vector<double> x = {0.3, -0.1, 0.7, 0.2, -0.5, 0.05, 0.9, -0.4};
  for (int64_t pos_q : {0, 3, 17})
    for (int64_t pos_k : {0, 2, 17}) {
      INFO("positions " << pos_q << ", " << pos_k);
      const auto want = scores(rope(times(hf_q.data(), 8, x), 4, pos_q, true), rope(times(hf_k.data(), 4, x), 4, pos_k, true), 4);
      const auto got = scores(rope(times(q->data<float>(), 8, x), 4, pos_q, false),
                              rope(times(k->data<float>(), 4, x), 4, pos_k, false), 4);
      REQUIRE(got.size() == want.size());
      for (size_t h = 0; h < got.size(); ++h) CHECK(got[h] == Approx(want[h]).epsilon(1e-12));
    }
  // Qwen2 keeps the rows: llama.cpp's qwen2 rotates halves as Hugging Face does.
  Folder qwen(replaced(replaced(kLlama, "LlamaForCausalLM", "Qwen2ForCausalLM"), "\"llama\"", "\"qwen2\""));
  auto mq = hf::open_folder(qwen.dir.path());
  CHECK(mq->get_string("general.architecture") == "qwen2");
  CHECK(mq->weight("blk.0.attn_q.weight")->data<float>()[8] == 2008.0f);
  CHECK(mq->format().find("permuted") == std::string::npos);
}

TEST_CASE("hf: a llama folder reads as llama.cpp's converter writes it, tokenizer.json included") {
  Folder f;
  auto m = hf::open_folder(f.dir.path());
  CHECK(m->get_string("general.architecture") == "llama");
  CHECK(m->get_u64("llama.block_count") == 1);
  CHECK(m->get_u64("llama.context_length") == 64);
  CHECK(m->get_u64("llama.embedding_length") == 8);
  CHECK(m->get_u64("llama.feed_forward_length") == 16);
  CHECK(m->get_u64("llama.attention.head_count") == 2);
  CHECK(m->get_u64("llama.attention.head_count_kv") == 1);
  CHECK(m->get_u64("llama.rope.dimension_count") == 4);
  CHECK(m->get_u64("llama.vocab_size") == 6);
  CHECK(m->get_f64("llama.attention.layer_norm_rms_epsilon") == Approx(1e-6));
  CHECK(m->get_f64("llama.rope.freq_base") == 10000.0);
  CHECK(m->get_u64("general.file_type") == 0);
  CHECK_FALSE(m->meta("llama.attention.sliding_window"));

  CHECK(m->get_string("tokenizer.ggml.model") == "gpt2");
  CHECK(m->get_string("tokenizer.ggml.pre") == "llama-bpe");
  CHECK(m->meta("tokenizer.ggml.merges")->strings == std::vector<std::string_view>{"a b"});
  const MetaValue* types = m->meta("tokenizer.ggml.token_type");
  CHECK(types->at<int32_t>(1) == 3);  // special added tokens are control tokens
  CHECK(types->at<int32_t>(4) == 1);
  CHECK(m->get_u64("tokenizer.ggml.bos_token_id") == 1);  // config.json's, no tokenizer_config.json
  CHECK(m->get_u64("tokenizer.ggml.eos_token_id") == 2);
  CHECK(m->get_bool("tokenizer.ggml.add_bos_token"));     // the post-processor puts bos first
  CHECK_FALSE(m->get_bool("tokenizer.ggml.add_eos_token"));
  CHECK_FALSE(m->meta("tokenizer.chat_template"));
  CHECK(m->format().find("tokenizer.json (byte-level BPE, pre llama-bpe)") != std::string::npos);

  // tokenizer_config.json names the tokens by text and brings the chat template; a list of
  // eos ids (Llama 3.1) is read as its first.
  test::write_file(f.dir / "tokenizer_config.json",
                   text(R"({"bos_token": "<|begin|>", "eos_token": {"content": "<|end|>"}, "add_bos_token": false,
                            "chat_template": "{{ messages }}"})"));
  auto c = hf::open_folder(f.dir.path());
  CHECK_FALSE(c->get_bool("tokenizer.ggml.add_bos_token"));
  CHECK(c->get_string("tokenizer.chat_template") == "{{ messages }}");
  test::write_file(f.dir / "tokenizer_config.json", text("{}"));
  test::write_file(f.dir / "chat_template.jinja", text("{% for m in messages %}{% endfor %}"));
  CHECK(hf::open_folder(f.dir.path())->get_string("tokenizer.chat_template") == "{% for m in messages %}{% endfor %}");
  Folder list(replaced(kLlama, "\"eos_token_id\": 2", "\"eos_token_id\": [2, 1]"));
  CHECK(hf::open_folder(list.dir.path())->get_u64("tokenizer.ggml.eos_token_id") == 2);
}

TEST_CASE("hf: Llama 3.1's rope scaling becomes rope_freqs.weight as llama.cpp's converter computes it") {
  const std::string config = replaced(
      replaced(kLlama, "\"rope_theta\": 10000.0",
               R"("rope_theta": 500000.0, "head_dim": 128, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                   "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})"),
      "\"num_attention_heads\": 2", "\"num_attention_heads\": 1");
  Folder f(config, {{"model.embed_tokens.weight", {6, 8}}});
  auto m = hf::open_folder(f.dir.path());
  const Tensor* freqs = m->weight("rope_freqs.weight");
  REQUIRE(freqs);
  REQUIRE(freqs->ne[0] == 64);
  CHECK(m->get_u64("llama.attention.key_length") == 128);
  // The formula in float64: 1 for wavelengths under 8192/4, 8 over 8192, smoothed between.
  int ones = 0, eights = 0, between = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const double freq = std::pow(500000.0, -2.0 * static_cast<double>(i) / 128.0), wavelen = 2 * M_PI / freq;
    double want = 1;
    if (wavelen > 8192) want = 8;
    else if (wavelen >= 2048) {
      const double smooth = (8192 / wavelen - 1) / 3;
      want = 1 / ((1 - smooth) / 8 + smooth);
    }
    INFO("pair " << i);
    CHECK(freqs->data<float>()[i] == Approx(want).epsilon(1e-5));
    ++(want == 1 ? ones : want == 8 ? eights : between);
  }
  CHECK(ones > 10);
  CHECK(eights > 10);
  CHECK(between > 3);
}

TEST_CASE("hf: sharded weights are read through model.safetensors.index.json, checked both ways") {
  test::TempDir dir;
  test::write_file(dir / "config.json", text(kLlama));
  test::write_file(dir / "tokenizer.json", text(kTokenizer));
  test::write_file(dir / "model-00001-of-00002.safetensors", safetensors_of({{"model.embed_tokens.weight", {6, 8}}}));
  test::write_file(dir / "model-00002-of-00002.safetensors",
                   safetensors_of({{"model.layers.0.self_attn.q_proj.weight", {8, 8}}}));
  auto write_index = [&](const std::string& map) {
    test::write_file(dir / "model.safetensors.index.json", text(R"({"metadata": {}, "weight_map": {)" + map + "}}"));
  };
  auto index = [&](const std::string& map) {
    write_index(map);
    return error_of([&] { hf::open_folder(dir.path()); });
  };
  const std::string good = R"("model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                              "model.layers.0.self_attn.q_proj.weight": "model-00002-of-00002.safetensors")";
  write_index(good);
  auto m = hf::open_folder(dir.path());
  CHECK(m->tensors().size() == 2);
  CHECK(m->format().find("2 safetensors shards") != std::string::npos);
  check_message(index(R"("model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                         "model.layers.0.self_attn.q_proj.weight": "model-00001-of-00002.safetensors")"),
                {"lists 'model.layers.0.self_attn.q_proj.weight' in model-00001-of-00002.safetensors, which does not "
                 "hold it"});
  check_message(index(good + R"(, "extra": "model-00002-of-00002.safetensors")"), {"lists 'extra'"});
  test::write_file(dir / "model-00002-of-00002.safetensors",
                   safetensors_of({{"model.layers.0.self_attn.q_proj.weight", {8, 8}}, {"lm_head.weight", {6, 8}}}));
  check_message(index(good), {"tensor 'lm_head.weight' is in model-00002-of-00002.safetensors, but the index does not "
                              "list it"});
  check_message(index(R"("model.embed_tokens.weight": "../model.safetensors")"), {"is not a file name of this folder"});
  check_message(index(good + R"(, "x": "model-00003-of-00003.safetensors")"), {"model-00003-of-00003.safetensors"});
  check_message(index(""), {"weight_map must be an object"});

  test::TempDir pickle;
  test::write_file(pickle / "config.json", text(kLlama));
  test::write_file(pickle / "pytorch_model.bin", text("PK"));
  check_message(error_of([&] { hf::open_folder(pickle.path()); }), {"pytorch_model.bin is a pickle"});
}

TEST_CASE("hf: decoder config.json refusals name the key and what would be valid") {
  check_message(Folder(with(kLlama, R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0})")).refusal(),
                {"rope_scaling.rope_type \"yarn\" is not supported (valid: default, linear, llama3)"});
  const std::string phi3 = replaced(replaced(kLlama, "LlamaForCausalLM", "Phi3ForCausalLM"), "\"llama\"", "\"phi3\"");
  Folder plain_phi3(phi3);
  CHECK(hf::open_folder(plain_phi3.dir.path())->get_string("general.architecture") == "phi3");
  check_message(Folder(with(phi3, R"("rope_scaling": {"type": "longrope", "long_factor": [1.0], "short_factor": [1.0]})"))
                    .refusal(),
                {"\"longrope\" is not supported", "Phi-3's 128k models use LongRoPE"});
  check_message(Folder(replaced(kLlama, "\"silu\"", "\"gelu\"")).refusal(), {"hidden_act \"gelu\" is not supported"});
  check_message(Folder(replaced(kLlama, "LlamaForCausalLM", "LlamaForSequenceClassification")).refusal(),
                {"architectures [\"LlamaForSequenceClassification\"]", "semline reads LlamaForCausalLM"});
  check_message(Folder(with(kLlama, R"("attention_bias": true)")).refusal(), {"attention_bias = true"});
  check_message(Folder(with(replaced(replaced(kLlama, "LlamaForCausalLM", "Qwen2ForCausalLM"), "\"llama\"", "\"qwen2\""),
                            R"("use_sliding_window": true)"))
                    .refusal(),
                {"use_sliding_window = true is not supported"});
  check_message(Folder(replaced(kLlama, "\"num_key_value_heads\": 1", "\"num_key_value_heads\": 3")).refusal(),
                {"num_attention_heads 2 is not a multiple of num_key_value_heads 3"});
  check_message(Folder(replaced(kLlama, "\"rms_norm_eps\": 1e-6, ", "")).refusal(), {"key 'rms_norm_eps' is missing"});
  check_message(Folder(replaced(kLlama, "\"model_type\": \"llama\"", "\"model_type\": \"gemma\"")).refusal(),
                {"model_type \"gemma\" is not served", "\"llama\" (LlamaForCausalLM)"});
  auto shapes = llama_shapes();
  shapes["model.layers.0.self_attn.o_proj.bias"] = {8};
  check_message(Folder(kLlama, shapes).refusal(), {"tensor 'model.layers.0.self_attn.o_proj.bias' is not part of the "
                                                   "LlamaForCausalLM layout"});
  shapes = llama_shapes();
  shapes["model.layers.1.mlp.up_proj.weight"] = {16, 8};
  check_message(Folder(kLlama, shapes).refusal(), {"belongs to block 1, but config.json has num_hidden_layers 1"});
  shapes = llama_shapes();
  shapes["model.layers.0.self_attn.k_proj.weight"] = {6, 8};
  check_message(Folder(kLlama, shapes).refusal(), {"has 6 rows; config.json gives 1 heads of 4"});
  // Mistral's sliding window is kept (the llama arch honours it).
  Folder mistral(with(replaced(replaced(kLlama, "LlamaForCausalLM", "MistralForCausalLM"), "\"llama\"", "\"mistral\""),
                      R"("sliding_window": 4096)"));
  CHECK(hf::open_folder(mistral.dir.path())->get_u64("llama.attention.sliding_window") == 4096);
}

TEST_CASE("hf: tokenizer.json refusals name the file and what would be valid") {
  check_message(Folder(kLlama, llama_shapes(), replaced(kTokenizer, R"("type": "BPE")", R"("type": "Unigram")")).refusal(),
                {"tokenizer.json: model.type \"Unigram\" is not supported"});
  check_message(Folder(kLlama, llama_shapes(), replaced(kTokenizer, R"(\\p{N}{1,3})", R"(\\p{N}{1,4})")).refusal(),
                {"tokenizer.json: pre_tokenizer", "is not one semline recognises"});
  check_message(Folder(kLlama, llama_shapes(), replaced(kTokenizer, R"("\u0120": 5)", R"("\u0120": 9)")).refusal(),
                {"model.vocab gives \"Ġ\" the id 9, outside the model's vocabulary of 6"});
  check_message(Folder(kLlama, llama_shapes(), replaced(kTokenizer, R"([["a", "b"]])", R"(["a b c"])")).refusal(),
                {"merge \"a b c\" (rank 0) is not two pieces separated by one space"});
  check_message(Folder(kLlama, llama_shapes(), replaced(kTokenizer, R"("normalizer": null)", R"("normalizer": {"type": "Lowercase"})"))
                    .refusal(),
                {"normalizer {\"type\":\"Lowercase\"} is not supported for a byte-level BPE"});
  Folder cfg;
  test::write_file(cfg.dir / "tokenizer_config.json", text(R"({"bos_token": "<s>"})"));
  check_message(cfg.refusal(), {"tokenizer_config.json: bos_token \"<s>\" is not a token of tokenizer.json"});
  // A SentencePiece BPE whose merge makes a piece the vocabulary lacks.
  const std::string spm = R"({"added_tokens": [{"id": 0, "content": "<unk>", "special": true}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}, "pre_tokenizer": null,
    "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
      "vocab": {"<unk>": 0, "<0x41>": 1, "a": 2, "b": 3, "\u2581": 4, "\u2581a": 5}, "merges": ["\u2581 a", "a b"]}})";
  check_message(Folder(kLlama, llama_shapes(), spm).refusal(), {"merge \"a b\" (rank 1) makes a piece that is not in the vocabulary"});
  Folder ok(kLlama, llama_shapes(), replaced(spm, R"(, "a b"])", "]"));
  auto m = hf::open_folder(ok.dir.path());
  CHECK(m->get_string("tokenizer.ggml.model") == "llama");
  CHECK(m->get_bool("tokenizer.ggml.add_space_prefix"));
  const MetaValue* types = m->meta("tokenizer.ggml.token_type");
  CHECK(types->at<int32_t>(0) == 2);  // unknown
  CHECK(types->at<int32_t>(1) == 6);  // byte
  CHECK(m->meta("tokenizer.ggml.scores")->at<float>(5) == -1.0f);  // made by the first merge
  CHECK(m->meta("tokenizer.ggml.scores")->at<float>(2) == 0.0f);   // made by none
}

TEST_CASE("hf: Gemma2ForCausalLM reads as llama.cpp's gemma2, norms stored as 1 + w, its options checked") {
  const std::string gemma = R"({"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 8,
    "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
    "head_dim": 4, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "vocab_size": 6,
    "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": 4, "attn_logit_softcapping": 50.0,
    "final_logit_softcapping": 30.0, "sliding_window": 4096, "tie_word_embeddings": true})";
  Folder f(gemma, {{"model.embed_tokens.weight", {6, 8}}, {"model.layers.0.input_layernorm.weight", {8}},
                   {"model.layers.0.post_feedforward_layernorm.weight", {8}}, {"model.norm.weight", {8}},
                   {"lm_head.weight", {6, 8}}});
  auto m = hf::open_folder(f.dir.path());
  CHECK(m->get_string("general.architecture") == "gemma2");
  CHECK(m->get_f64("gemma2.attn_logit_softcapping") == 50.0);
  CHECK(m->get_f64("gemma2.final_logit_softcapping") == 30.0);
  CHECK(m->get_u64("gemma2.attention.sliding_window") == 4096);
  CHECK(m->get_u64("gemma2.attention.sliding_window_pattern") == 2);
  CHECK(m->get_u64("gemma2.attention.key_length") == 4);
  CHECK_FALSE(m->weight("output.weight"));  // lm_head is the tied embedding: skipped, as llama.cpp does
  // Tensor values are (index in name order: lm_head first) * 1000 + element, plus the 1.
  const Tensor* post = m->weight("blk.0.post_ffw_norm.weight");
  REQUIRE(post);
  CHECK(post->dtype == DType::F32);
  CHECK(post->data<float>()[3] == 3004.0f);
  CHECK(m->weight("blk.0.attn_norm.weight")->data<float>()[0] == 2001.0f);
  CHECK(m->weight("output_norm.weight")->data<float>()[7] == 4008.0f);
  CHECK(m->format().find("3 norm weights stored as 1 + w") != std::string::npos);

  check_message(Folder(replaced(gemma, "\"query_pre_attn_scalar\": 4", "\"query_pre_attn_scalar\": 8"),
                       {{"model.embed_tokens.weight", {6, 8}}})
                    .refusal(),
                {"query_pre_attn_scalar 8 is not 4"});
  check_message(Folder(replaced(gemma, "\"final_logit_softcapping\": 30.0", "\"final_logit_softcapping\": null"),
                       {{"model.embed_tokens.weight", {6, 8}}})
                    .refusal(),
                {"final_logit_softcapping is absent or null"});
  check_message(Folder(replaced(gemma, "gelu_pytorch_tanh", "silu"), {{"model.embed_tokens.weight", {6, 8}}}).refusal(),
                {"hidden_activation \"silu\" is not supported; Gemma2ForCausalLM gates with gelu_pytorch_tanh"});
}

TEST_CASE("hf: StarCoder2, StableLM and GPT-NeoX read as llama.cpp's converter writes them, their options checked") {
  // GPT-NeoX: 2 heads of 2; the fused rows per head (h, {q,k,v}, d) become q | k | v.
  const std::string neox = R"({"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 4,
    "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 64,
    "layer_norm_eps": 1e-5, "rotary_pct": 1.0, "rotary_emb_base": 10000, "vocab_size": 6, "hidden_act": "gelu",
    "use_parallel_residual": true, "tie_word_embeddings": false})";
  const std::map<std::string, std::vector<int64_t>> neox_shapes = {
      {"embed_out.weight", {6, 4}},  // index 0
      {"gpt_neox.embed_in.weight", {6, 4}},
      {"gpt_neox.layers.0.attention.bias", {1, 1, 64, 64}},  // a buffer: skipped
      {"gpt_neox.layers.0.attention.query_key_value.bias", {12}},    // index 3
      {"gpt_neox.layers.0.attention.query_key_value.weight", {12, 4}}};  // index 4
  Folder f(neox, neox_shapes, "");
  auto m = hf::open_folder(f.dir.path());
  CHECK(m->get_string("general.architecture") == "gptneox");
  CHECK(m->get_u64("gptneox.attention.head_count_kv") == 2);
  CHECK(m->get_u64("gptneox.rope.dimension_count") == 2);
  CHECK(m->get_bool("gptneox.use_parallel_residual"));
  CHECK(m->weight("output.weight"));
  CHECK_FALSE(m->tensor_info("blk.0.attn_qkv.weight") == nullptr);
  const float* w = m->weight("blk.0.attn_qkv.weight")->data<float>();
  const float* b = m->weight("blk.0.attn_qkv.bias")->data<float>();
  for (int part = 0; part < 3; ++part)
    for (int h = 0; h < 2; ++h)
      for (int d = 0; d < 2; ++d) {
        const int row = (part * 2 + h) * 2 + d, from = (h * 3 + part) * 2 + d;
        CHECK(b[row] == static_cast<float>(3000 + from));
        for (int c = 0; c < 4; ++c) CHECK(w[row * 4 + c] == static_cast<float>(4000 + from * 4 + c));
      }
  CHECK(m->format().find("2 fused qkv maps regrouped from per head to q | k | v") != std::string::npos);
  check_message(Folder(replaced(neox, "\"rotary_pct\": 1.0", "\"rotary_pct\": 0.25"), neox_shapes, "").refusal(),
                {"config.json: 0.25 of a head of 2 rotates 0 dimensions; RoPE rotates an even number, at least 2"});
  check_message(Folder(replaced(neox, "\"gelu\"", "\"relu\""), neox_shapes, "").refusal(),
                {"hidden_act \"relu\" is not supported; llama.cpp's gptneox runs a GELU"});
  check_message(Folder(neox, {{"gpt_neox.embed_in.weight", {6, 4}}, {"gpt_neox.layers.0.attention.query_key_value.weight", {9, 4}}}, "")
                    .refusal(),
                {"has 9 rows; config.json gives 2 heads of 2, so q, k and v hold 12"});
  check_message(Folder(neox, {{"gpt_neox.embed_in.weight", {6, 4}}, {"gpt_neox.layers.0.mlp.c_fc.weight", {16, 4}}}, "")
                    .refusal(),
                {"tensor 'gpt_neox.layers.0.mlp.c_fc.weight' is not part of the GPTNeoXForCausalLM layout"});

  // StarCoder2: its window kept; StableLM: the converter's use_parallel_residual, the 12B refused.
  const std::string starcoder2 = R"({"architectures": ["Starcoder2ForCausalLM"], "model_type": "starcoder2",
    "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
    "num_key_value_heads": 1, "max_position_embeddings": 64, "norm_epsilon": 1e-5, "rope_theta": 100000,
    "vocab_size": 6, "hidden_act": "gelu_pytorch_tanh", "use_bias": true, "sliding_window": 16})";
  const std::map<std::string, std::vector<int64_t>> sc_shapes = {
      {"model.embed_tokens.weight", {6, 8}}, {"model.layers.0.mlp.c_fc.bias", {16}}, {"model.norm.bias", {8}}};
  auto s = hf::open_folder(Folder(starcoder2, sc_shapes, "").dir.path());
  CHECK(s->get_u64("starcoder2.attention.sliding_window") == 16);
  CHECK(s->get_f64("starcoder2.rope.freq_base") == 100000.0);
  CHECK(s->get_u64("starcoder2.rope.dimension_count") == 4);
  CHECK(s->weight("blk.0.ffn_up.bias"));
  CHECK(s->weight("output_norm.bias"));
  check_message(Folder(replaced(starcoder2, "\"use_bias\": true", "\"use_bias\": false"), sc_shapes, "").refusal(),
                {"use_bias = false is not supported"});
  check_message(Folder(with(starcoder2, R"("rope_scaling": {"rope_type": "yarn", "factor": 4})"), sc_shapes, "").refusal(),
                {"rope_scaling.rope_type \"yarn\" is not supported for Starcoder2ForCausalLM"});

  const std::string stablelm = R"({"architectures": ["StableLmForCausalLM"], "model_type": "stablelm",
    "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
    "num_key_value_heads": 2, "max_position_embeddings": 64, "layer_norm_eps": 1e-5, "rope_theta": 10000,
    "partial_rotary_factor": 0.5, "vocab_size": 6, "hidden_act": "silu", "use_qkv_bias": true,
    "qk_layernorm": false, "use_parallel_residual": false})";
  const std::map<std::string, std::vector<int64_t>> lm_shapes = {{"model.embed_tokens.weight", {6, 8}},
                                                                {"model.layers.0.mlp.gate_proj.weight", {16, 8}}};
  auto l = hf::open_folder(Folder(stablelm, lm_shapes, "").dir.path());
  CHECK(l->get_u64("stablelm.rope.dimension_count") == 2);
  CHECK_FALSE(l->get_bool("stablelm.use_parallel_residual"));
  check_message(Folder(replaced(stablelm, "\"qk_layernorm\": false", "\"qk_layernorm\": true"), lm_shapes, "").refusal(),
                {"qk_layernorm = true (StableLM 2 12B's per-head q/k LayerNorms) is not supported"});
  check_message(Folder(replaced(stablelm, "\"use_parallel_residual\": false", "\"use_parallel_residual\": true"),
                       lm_shapes, "")
                    .refusal(),
                {"use_parallel_residual = true (StableLM 2 12B) is not supported"});
  check_message(Folder(replaced(stablelm, "StableLmForCausalLM", "StableLmForSequenceClassification"), lm_shapes, "")
                    .refusal(),
                {"semline reads StableLmForCausalLM (a causal LM, not a classifier or an encoder)"});
}
