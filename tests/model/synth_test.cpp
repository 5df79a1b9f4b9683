// Synthetic models: shapes and metadata read back, determinism, weight statistics, dtypes.
#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <cstring>
#include <set>

#include "core/model/gguf.h"
#include "core/model/gguf_writer.h"
#include "core/model/synth.h"
#include "model_test_util.h"
#include "semline/codec.h"

using namespace semline;
using namespace semline::gguf;
using semline::test::check_message;
using semline::test::error_of;

namespace {

// A spec's shape in one line, so a preset is checked in one comparison.
std::string shape_of(const SynthSpec& s) {
  return fmt::format("dim {} ffn {} layers {} heads {}/{} vocab {} experts {}/{}", s.dim, s.ffn, s.layers, s.heads,
                     s.kv_heads, s.vocab, s.experts, s.experts_used);
}

std::vector<float> dequantize(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.elements()));
  for (int64_t r = 0; r < t.rows(); ++r)
    dequantize_row(t.dtype, static_cast<const uint8_t*>(t.host) + r * t.row_bytes(), out.data() + r * t.ne[0], t.ne[0]);
  return out;
}

std::vector<std::string> expected_names(int layers, bool output) {
  std::vector<std::string> n = {"token_embd.weight", "output_norm.weight"};
  if (output) n.push_back("output.weight");
  for (int l = 0; l < layers; ++l)
    for (const char* w : {"attn_q", "attn_k", "attn_v", "attn_output", "attn_norm", "ffn_gate", "ffn_down", "ffn_up",
                          "ffn_norm"})
      n.push_back("blk." + std::to_string(l) + "." + w + ".weight");
  return n;
}

}  // namespace

TEST_CASE("synth tiny writes a llama GGUF with the stories260K layout") {
  test::TempDir dir;
  SynthSpec spec = synth_preset("tiny");
  uint64_t last = 0, total = 0;
  synth_write(spec, dir / "tiny.gguf", [&](uint64_t d, uint64_t t) { last = d, total = t; });
  CHECK(last == total);
  auto f = GgufFile::open(dir / "tiny.gguf");
  CHECK(f->get_string("general.architecture") == "llama");
  CHECK(f->get_string("general.name") == "synth-tiny");
  CHECK(f->get_u64("general.file_type") == 0);
  CHECK(f->get_u64("llama.context_length") == 2048);
  CHECK(f->get_u64("llama.embedding_length") == 64);
  CHECK(f->get_u64("llama.feed_forward_length") == 192);
  CHECK(f->get_u64("llama.attention.head_count") == 4);
  CHECK(f->get_u64("llama.attention.head_count_kv") == 2);
  CHECK(f->get_u64("llama.block_count") == 2);
  CHECK(f->get_u64("llama.rope.dimension_count") == 16);
  CHECK(f->get_f64("llama.rope.freq_base") == 10000.0);
  CHECK(f->get_f64("llama.attention.layer_norm_rms_epsilon") == Approx(1e-5));
  // Every metadata key of the converted reference exists here too.
  auto ref = GgufFile::open(test::models_dir() / "gguf/stories260K.gguf");
  for (const auto& [key, value] : ref->metadata()) {
    if (key.find("seperator") != std::string::npos || key.find("padding") != std::string::npos) continue;
    INFO(key);
    REQUIRE(f->meta(key));
    CHECK(f->meta(key)->type == value.type);
  }
  CHECK(f->get_string("tokenizer.ggml.model") == "llama");
  const MetaValue* tokens = f->meta("tokenizer.ggml.tokens");
  REQUIRE(tokens->strings.size() == 512);
  CHECK(tokens->strings[1] == "<s>");
  CHECK(tokens->strings[3] == "<0x00>");
  CHECK(tokens->strings[258] == "<0xFF>");
  CHECK(tokens->strings[259] == "\xe2\x96\x81" "e");
  CHECK(std::set<std::string_view>(tokens->strings.begin(), tokens->strings.end()).size() == 512);
  CHECK(f->meta("tokenizer.ggml.token_type")->at<int32_t>(200) == 6);
  CHECK(f->meta("tokenizer.ggml.scores")->count == 512);

  auto names = expected_names(2, true);
  REQUIRE(f->tensors().size() == names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    CHECK(f->tensors()[i].name == names[i]);
    CHECK(f->tensors()[i].view.dtype == DType::F32);
  }
  CHECK(tensor_shape_string(*f->weight("token_embd.weight")) == "F32 [64, 512]");
  CHECK(tensor_shape_string(*f->weight("output.weight")) == "F32 [64, 512]");
  CHECK(tensor_shape_string(*f->weight("blk.1.attn_k.weight")) == "F32 [64, 32]");
  CHECK(tensor_shape_string(*f->weight("blk.1.ffn_down.weight")) == "F32 [192, 64]");
  CHECK(tensor_shape_string(*f->weight("blk.0.ffn_up.weight")) == "F32 [64, 192]");
  CHECK(tensor_shape_string(*f->weight("blk.0.ffn_norm.weight")) == "F32 [64]");
}

TEST_CASE("synth weights have the intended scale") {
  test::TempDir dir;
  synth_write(synth_preset("tiny"), dir / "tiny.gguf");
  auto f = GgufFile::open(dir / "tiny.gguf");
  auto stats = [&](const char* name) {
    const Tensor* t = f->weight(name);
    double s = 0, s2 = 0, lo = 1e9, hi = -1e9;
    int64_t n = t->elements();
    for (int64_t i = 0; i < n; ++i) {
      double x = t->data<float>()[i];
      s += x, s2 += x * x, lo = std::min(lo, x), hi = std::max(hi, x);
    }
    double mean = s / n;
    return std::array<double, 4>{mean, std::sqrt(s2 / n - mean * mean), lo, hi};
  };
  auto emb = stats("token_embd.weight");
  CHECK(std::fabs(emb[0]) < 0.005);
  CHECK(emb[1] == Approx(1.0 / 8).epsilon(0.03));  // 1/sqrt(64)
  auto down = stats("blk.0.ffn_down.weight");
  CHECK(down[1] == Approx(1.0 / std::sqrt(192.0)).epsilon(0.03));
  auto norm = stats("blk.1.attn_norm.weight");
  CHECK(norm[0] == Approx(1.0).epsilon(0.03));
  CHECK(norm[2] >= 0.9);
  CHECK(norm[3] <= 1.1);
}

TEST_CASE("synth is deterministic: same seed, same bytes, another seed, other weights") {
  test::TempDir dir;
  SynthSpec spec = synth_preset("tiny");
  synth_write(spec, dir / "a.gguf");
  synth_write(spec, dir / "b.gguf");
  spec.seed = 2;
  synth_write(spec, dir / "c.gguf");
  auto a = test::read_file(dir / "a.gguf");
  auto b = test::read_file(dir / "b.gguf");
  auto c = test::read_file(dir / "c.gguf");
  CHECK(a == b);
  REQUIRE(a.size() == c.size());
  auto fa = GgufFile::open(dir / "a.gguf");
  auto fc = GgufFile::open(dir / "c.gguf");
  CHECK(std::memcmp(fa->bytes().data(), fc->bytes().data(), fa->data_offset()) == 0);  // same header
  for (size_t i = 0; i < fa->tensors().size(); ++i) {
    INFO(fa->tensors()[i].name);
    CHECK(std::memcmp(fa->tensors()[i].view.host, fc->tensors()[i].view.host, fa->tensors()[i].bytes) != 0);
  }
  // A tensor does not depend on which other tensors exist.
  SynthSpec tied = synth_preset("tiny");
  tied.tied_output = true;
  synth_write(tied, dir / "t.gguf");
  auto ft = GgufFile::open(dir / "t.gguf");
  CHECK(ft->weight("output.weight") == nullptr);
  CHECK(ft->tensors().size() == fa->tensors().size() - 1);
  const TensorInfo* q = ft->tensor_info("blk.1.attn_q.weight");
  CHECK(std::memcmp(q->view.host, fa->weight("blk.1.attn_q.weight")->host, q->bytes) == 0);
}

TEST_CASE("synth quantises weight matrices and keeps norms in F32") {
  test::TempDir dir;
  SynthSpec spec = synth_preset("tiny");
  synth_write(spec, dir / "f32.gguf");
  auto ref = GgufFile::open(dir / "f32.gguf");
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::F16, DType::BF16}) {
    INFO(dtype_name(t));
    spec.dtype = t;
    synth_write(spec, dir / "q.gguf");
    auto f = GgufFile::open(dir / "q.gguf");
    CHECK(f->get_u64("general.file_type") == (t == DType::Q8_0 ? 7u : t == DType::Q4_0 ? 2u : t == DType::F16 ? 1u : 32u));
    for (const TensorInfo& ti : f->tensors()) {
      INFO(ti.name);
      bool is_norm = ti.view.ndim == 1;
      CHECK(ti.view.dtype == (is_norm ? DType::F32 : t));
      // Same seed: the quantised values are the F32 model's values, up to the codec's error.
      std::vector<float> got = dequantize(ti.view);
      std::vector<float> want = dequantize(*ref->weight(ti.name));
      REQUIRE(got.size() == want.size());
      double max_err = 0, max_abs = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        max_err = std::max(max_err, static_cast<double>(std::fabs(got[i] - want[i])));
        max_abs = std::max(max_abs, static_cast<double>(std::fabs(want[i])));
      }
      double bound = is_norm ? 0 : t == DType::Q4_0 ? max_abs / 8 * 1.01 : t == DType::Q8_0 ? max_abs / 127 * 0.57
                                                                                : max_abs / 128;
      CHECK(max_err <= bound);
    }
  }
}

TEST_CASE("synth keeps rows that are not whole blocks in F32") {
  test::TempDir dir;
  SynthSpec spec = synth_preset("tiny");
  spec.dim = 48;
  spec.heads = 4;
  spec.kv_heads = 4;
  spec.ffn = 80;
  spec.dtype = DType::Q4_0;
  synth_write(spec, dir / "odd.gguf");
  auto f = GgufFile::open(dir / "odd.gguf");
  CHECK(f->weight("token_embd.weight")->dtype == DType::F32);
  CHECK(f->weight("blk.0.ffn_down.weight")->dtype == DType::F32);
  spec.dim = 64;
  synth_write(spec, dir / "mixed.gguf");
  auto g = GgufFile::open(dir / "mixed.gguf");
  CHECK(g->weight("token_embd.weight")->dtype == DType::Q4_0);
  CHECK(g->weight("blk.0.ffn_gate.weight")->dtype == DType::Q4_0);
  CHECK(g->weight("blk.0.ffn_down.weight")->dtype == DType::F32);  // rows of 80
}

TEST_CASE("synth copies the tokenizer of a vocab GGUF") {
  test::TempDir dir;
  SynthSpec spec = synth_preset("tiny");
  spec.vocab = 0;
  spec.vocab_gguf = test::models_dir() / "gguf/stories260K.gguf";
  synth_write(spec, dir / "v.gguf");
  auto f = GgufFile::open(dir / "v.gguf");
  auto src = GgufFile::open(spec.vocab_gguf);
  CHECK(tensor_shape_string(*f->weight("output.weight")) == "F32 [64, 512]");
  for (const auto& [key, value] : src->metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    INFO(key);
    const MetaValue* got = f->meta(key);
    REQUIRE(got);
    CHECK(got->type == value.type);
    if (value.elem == MetaType::STRING) CHECK(got->strings == value.strings);
    else if (value.type == MetaType::ARRAY)
      CHECK(std::memcmp(got->raw, value.raw, value.count * meta_type_size(value.elem)) == 0);
    else CHECK(got->u == value.u);
  }

  spec.vocab_gguf = test::models_dir() / "vocab/ggml-vocab-llama-spm.gguf";
  spec.layers = 1;
  synth_write(spec, dir / "spm.gguf");
  auto spm = GgufFile::open(dir / "spm.gguf");
  CHECK(spm->meta("tokenizer.ggml.tokens")->count == 32000);
  CHECK(tensor_shape_string(*spm->weight("token_embd.weight")) == "F32 [64, 32000]");
}

TEST_CASE("synth presets and refusals") {
  CHECK(shape_of(synth_preset("llama-1b")) == "dim 2048 ffn 8192 layers 16 heads 32/8 vocab 32000 experts 0/0");
  CHECK(shape_of(synth_preset("llama-134m")) == "dim 768 ffn 2048 layers 12 heads 12/12 vocab 32000 experts 0/0");
  CHECK(shape_of(synth_preset("mixtral-tiny")) == "dim 256 ffn 512 layers 4 heads 8/4 vocab 512 experts 8/2");
  CHECK(synth_preset("mixtral-1b").experts == 8);
  for (const std::string& name : synth_preset_names()) CHECK_NOTHROW(synth_validate(synth_preset(name)));
  check_message(error_of([] { synth_preset("tinny"); }),
                {"unknown synth preset 'tinny' (did you mean 'tiny'?) (presets: tiny, llama-134m, llama-1b, "
                 "mixtral-tiny, mixtral-1b)"});

  test::TempDir dir;
  auto refuse = [&](auto edit) {
    SynthSpec s = synth_preset("tiny");
    edit(s);
    return error_of([&] { synth_write(s, dir / "x.gguf"); });
  };
  check_message(refuse([](SynthSpec& s) { s.arch = "qwen"; }),
                {"synth: architecture 'qwen' is not one synth writes (did you mean 'qwen2'?) (archs: llama, qwen2, qwen3, phi3, stablelm, gptneox, starcoder2, gemma2, mamba, mamba2, jamba)"});
  check_message(refuse([](SynthSpec& s) { s.arch = "qwen2", s.rope_freqs = true; }),
                {"synth: experts are llama's and jamba's, rope_freqs llama's; the qwen2 family has no rope_freqs"});
  check_message(refuse([](SynthSpec& s) { s.arch = "qwen2", s.window = 8; }),
                {"synth: a window is llama's (Mistral), phi3's, starcoder2's and gemma2's; the qwen2 family has none"});
  check_message(refuse([](SynthSpec& s) { s.final_softcap = 30; }), {"synth: soft caps are gemma2's; the llama family has none"});
  check_message(refuse([](SynthSpec& s) { s.dt_b_c_rms = true; }), {"synth: dt_b_c_rms is mamba's; the llama family has none"});
  check_message(refuse([](SynthSpec& s) { s.arch = "mamba", s.head_dim = 32; }),
                {"synth: experts, a window, head_dim and rope_scale are attention's; mamba has none"});
  check_message(refuse([](SynthSpec& s) { s.arch = "mamba", s.d_conv = 1; }), {"synth: d_conv 1 must be 2 to 64"});
  check_message(refuse([](SynthSpec& s) { s.arch = "mamba", s.d_state = 0; }), {"synth: d_state is 0, expected 1 to"});
  check_message(refuse([](SynthSpec& s) { s.rope_scale = -4; }), {"synth: rope_scale -4 must be 0 (none) or a positive factor"});
  check_message(refuse([](SynthSpec& s) { s.dim = 0; }), {"synth: dim is 0, expected 1 to"});
  check_message(refuse([](SynthSpec& s) { s.layers = -1; }), {"synth: layers is -1"});
  check_message(refuse([](SynthSpec& s) { s.heads = 5; }), {"synth: dim 64 is not a multiple of heads 5"});
  check_message(refuse([](SynthSpec& s) { s.kv_heads = 3; }), {"synth: heads 4 is not a multiple of kv_heads 3"});
  check_message(refuse([](SynthSpec& s) { s.heads = 64, s.kv_heads = 64; }), {"head size 1 (dim 64 / heads 64) is odd"});
  check_message(refuse([](SynthSpec& s) { s.vocab = 100; }), {"synth: vocab is 100, expected 259 to"});
  check_message(refuse([](SynthSpec& s) { s.eps = 0; }), {"synth: eps 0 must be a positive number"});
  check_message(refuse([](SynthSpec& s) { s.rope_base = -1; }), {"rope_base -1 must be a positive number"});
  check_message(refuse([](SynthSpec& s) { s.dtype = static_cast<DType>(12); }), {"synth: dtype 12 is not one of"});
  check_message(refuse([](SynthSpec& s) { s.experts = 4, s.experts_used = 5; }),
                {"synth: experts 4 and experts_used 5 must be both 0 (dense) or 1 <= experts_used <= experts"});
  check_message(refuse([](SynthSpec& s) { s.experts = 4; }), {"synth: experts 4 and experts_used 0 must be"});
  check_message(refuse([](SynthSpec& s) { s.window = -2; }), {"synth: window -2 must be 0 (none) to"});
  check_message(refuse([&](SynthSpec& s) { s.vocab_gguf = dir / "absent.gguf"; }), {"absent.gguf: cannot open"});
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.write(dir / "novocab.gguf");
  check_message(refuse([&](SynthSpec& s) { s.vocab_gguf = dir / "novocab.gguf"; }),
                {"novocab.gguf: no tokenizer.ggml.tokens string array to take the vocabulary from"});
  CHECK_FALSE(std::filesystem::exists(dir / "x.gguf"));
}

TEST_CASE("synth mixtral-tiny writes Mixtral's router and expert stacks, and a sliding window when asked") {
  test::TempDir dir;
  SynthSpec spec = synth_preset("mixtral-tiny");
  spec.layers = 2;
  spec.window = 4096;
  spec.dtype = DType::Q8_0;
  synth_write(spec, dir / "mix.gguf");
  auto f = GgufFile::open(dir / "mix.gguf");
  CHECK(f->get_u64("llama.expert_count") == 8);
  CHECK(f->get_u64("llama.expert_used_count") == 2);
  CHECK(f->get_u64("llama.attention.sliding_window") == 4096);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    CHECK(tensor_shape_string(*f->weight(p + "ffn_gate_inp.weight")) == "F32 [256, 8]");  // the router stays float
    CHECK(tensor_shape_string(*f->weight(p + "ffn_gate_exps.weight")) == "Q8_0 [256, 512, 8]");
    CHECK(tensor_shape_string(*f->weight(p + "ffn_up_exps.weight")) == "Q8_0 [256, 512, 8]");
    CHECK(tensor_shape_string(*f->weight(p + "ffn_down_exps.weight")) == "Q8_0 [512, 256, 8]");
    CHECK(f->weight(p + "ffn_gate.weight") == nullptr);  // no dense feed-forward
    CHECK(f->weight(p + "ffn_norm.weight") != nullptr);
  }
  // Each expert is its own stream of rows: expert 7's gate rows differ from expert 0's.
  const Tensor* g = f->weight("blk.0.ffn_gate_exps.weight");
  const auto* bytes = static_cast<const uint8_t*>(g->host);
  CHECK(std::memcmp(bytes, bytes + 7 * g->nb[2], static_cast<size_t>(g->nb[2])) != 0);
  CHECK(g->nb[2] == 512 * g->nb[1]);

  SynthSpec dense = synth_preset("tiny");
  synth_write(dense, dir / "dense.gguf");
  auto d = GgufFile::open(dir / "dense.gguf");
  CHECK(d->meta("llama.expert_count") == nullptr);
  CHECK(d->meta("llama.attention.sliding_window") == nullptr);
}
