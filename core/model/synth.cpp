#include "core/model/synth.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/model/file_type.h"
#include "core/model/gguf.h"
#include "core/model/synth_vocab.h"
#include "core/util/text.h"
#include "semline/codec.h"
#include "semline/error.h"

namespace semline {

namespace {

struct Preset {
  const char* name;
  SynthSpec spec;
};
const Preset kPresets[] = {
    {"tiny", {.name = "synth-tiny", .dim = 64, .ffn = 192, .layers = 2, .heads = 4, .kv_heads = 2, .vocab = 512}},
    {"llama-134m",
     {.name = "synth-llama-134m", .dim = 768, .ffn = 2048, .layers = 12, .heads = 12, .kv_heads = 12, .vocab = 32000}},
    {"llama-1b",
     {.name = "synth-llama-1b", .dim = 2048, .ffn = 8192, .layers = 16, .heads = 32, .kv_heads = 8, .vocab = 32000}},
    {"mixtral-tiny",
     {.name = "synth-mixtral-tiny", .dim = 256, .ffn = 512, .layers = 4, .heads = 8, .kv_heads = 4, .vocab = 512,
      .experts = 8, .experts_used = 2}},
    {"mixtral-1b",
     {.name = "synth-mixtral-1b", .dim = 1024, .ffn = 3072, .layers = 16, .heads = 16, .kv_heads = 8, .vocab = 32000,
      .experts = 8, .experts_used = 2}},
};
constexpr int64_t kMaxExperts = 4096;  // as the llama template reads them

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// A tensor's values: center + spread * u, u uniform in [-1, 1), from a stream seeded by the
// model seed and the tensor name only, so a tensor does not change when others are added.
gguf::Fill random_fill(uint64_t seed, const std::string& name, DType type, int64_t row, int64_t rows, float center,
                       float spread) {
  return [=](std::span<uint8_t> dst) {
    uint64_t state = seed ^ fnv1a(name);
    splitmix(state);
    std::vector<float> x(static_cast<size_t>(row));
    const size_t rb = static_cast<size_t>(dtype_row_bytes(type, row));
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : x) {
        float u = static_cast<float>(splitmix(state) >> 40) * (2.0f / 16777216.0f) - 1.0f;
        v = center + spread * u;
      }
      quantize_row(type, x.data(), dst.data() + static_cast<size_t>(r) * rb, row);
    }
  };
}

void check_positive(const char* field, int64_t v) {
  if (v < 1 || v > UINT32_MAX)
    throw Error(fmt::format("synth: {} is {}, expected 1 to {}", field, v, UINT32_MAX));
}

// What sets a family's file apart from llama's.
struct Family {
  const char* name;
  bool qkv_bias = false;    // attn_{q,k,v}.bias
  bool out_bias = false;    // attn_output.bias
  bool layer_norm = false;  // norms with a .bias (LayerNorm) instead of RMSNorm
  bool gated = true;        // ffn_gate (SwiGLU), else an MLP of up and down
  bool ffn_bias = false;    // ffn_{up,down}.bias
  bool qk_norm = false;     // attn_{q,k}_norm.weight, one head's width
  bool fused = false;       // attn_qkv (q | k | v), and a gated ffn_up holding gate | up (Phi-3)
  bool quarter_rope = false;  // a quarter of each head rotated (Pythia's rotary_pct 0.25)
  bool parallel = false;    // {arch}.use_parallel_residual
  bool sandwich = false;    // Gemma 2: post_attention_norm and post_ffw_norm, soft caps, tied head
  bool ssm = false;         // Mamba: a selective state-space mixer per block, nothing else
  const char* eps_key = "attention.layer_norm_rms_epsilon";
};
const Family kFamilies[] = {
    {.name = "llama"},
    {.name = "qwen2", .qkv_bias = true},
    {.name = "qwen3", .qk_norm = true},
    {.name = "phi3", .fused = true},
    {.name = "stablelm", .qkv_bias = true, .layer_norm = true, .quarter_rope = true,
     .eps_key = "attention.layer_norm_epsilon"},
    {.name = "gptneox", .qkv_bias = true, .out_bias = true, .layer_norm = true, .gated = false, .ffn_bias = true,
     .fused = true, .quarter_rope = true, .parallel = true, .eps_key = "attention.layer_norm_epsilon"},
    {.name = "starcoder2", .qkv_bias = true, .out_bias = true, .layer_norm = true, .gated = false, .ffn_bias = true,
     .eps_key = "attention.layer_norm_epsilon"},
    {.name = "gemma2", .sandwich = true},
    {.name = "mamba", .ssm = true},
    {.name = "mamba2", .ssm = true},
    {.name = "jamba"},
};

const Family& family_of(const std::string& arch) {
  for (const Family& f : kFamilies)
    if (arch == f.name) return f;
  throw Error("synth: no family " + arch);  // synth_validate checked it
}

int64_t head_dim_of(const SynthSpec& s) { return s.head_dim > 0 ? s.head_dim : s.dim / s.heads; }

// Uniform values: a matrix's spread keeps activations' scale (std 1 / sqrt(row length)).
void add_matrix(gguf::GgufWriter& w, const SynthSpec& s, const std::string& name, int64_t in, int64_t outs,
                int64_t count = 0) {
  DType t = weight_dtype(s.dtype, in);
  float spread = std::sqrt(3.0f / static_cast<float>(in));  // uniform: std = spread / sqrt(3)
  std::vector<int64_t> shape = {in, outs};
  if (count > 0) shape.push_back(count);
  w.add_tensor(name, t, shape, random_fill(s.seed, name, t, in, outs * std::max<int64_t>(count, 1), 0.0f, spread));
}

// F32 values center +- spread: norms, biases and the SSM's per-channel constants.
void add_floats(gguf::GgufWriter& w, const SynthSpec& s, const std::string& name, std::vector<int64_t> shape,
                float center, float spread) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  w.add_tensor(name, DType::F32, shape, random_fill(s.seed, name, DType::F32, shape[0], n / shape[0], center, spread));
}

// The vocabulary, the embedding, the final norm and (untied) the output head of a model of width D;
// returns the vocabulary's size.
int64_t add_ends(gguf::GgufWriter& w, const SynthSpec& s, int64_t D) {
  const int64_t vocab = s.vocab_gguf.empty() ? add_generated_vocab(w, s.vocab) : copy_vocab(w, s.vocab_gguf);
  add_matrix(w, s, "token_embd.weight", D, vocab);
  add_floats(w, s, "output_norm.weight", {D}, 1.0f, 0.1f);
  if (!s.tied_output) add_matrix(w, s, "output.weight", D, vocab);
  return vocab;
}

// A Mamba mixer's sizes: d_conv K, d_inner E, d_state N, dt_rank R (Mamba-2: its head count).
void add_ssm_sizes(gguf::GgufWriter& w, const std::string& a, int64_t K, int64_t E, int64_t N, int64_t R) {
  w.add_u32(a + ".ssm.conv_kernel", static_cast<uint32_t>(K));
  w.add_u32(a + ".ssm.inner_size", static_cast<uint32_t>(E));
  w.add_u32(a + ".ssm.state_size", static_cast<uint32_t>(N));
  w.add_u32(a + ".ssm.time_step_rank", static_cast<uint32_t>(R));
}

// Layer l's Mamba-1 mixer of width D (sizes as add_ssm_sizes), with Jamba's dt, B and C norm
// scales where `norms`. Values keep the scan alive over a short prompt: A in [-1.9, -0.1], dt
// biased to softplus(dt) around 0.3.
void add_mamba1_mixer(gguf::GgufWriter& w, const SynthSpec& s, int64_t l, int64_t D, int64_t K, int64_t E, int64_t N,
                      int64_t R, bool norms) {
  auto name = [l](const char* what) { return fmt::format("blk.{}.{}", l, what); };
  add_matrix(w, s, name("ssm_in.weight"), D, 2 * E);
  add_floats(w, s, name("ssm_conv1d.weight"), {K, E}, 0.0f, std::sqrt(3.0f / static_cast<float>(K)));
  add_floats(w, s, name("ssm_conv1d.bias"), {E}, 0.0f, 0.5f);
  add_matrix(w, s, name("ssm_x.weight"), E, R + 2 * N);
  add_matrix(w, s, name("ssm_dt.weight"), R, E);
  add_floats(w, s, name("ssm_dt.bias"), {E}, -1.0f, 1.0f);
  add_floats(w, s, name("ssm_a"), {N, E}, -1.0f, 0.9f);
  add_floats(w, s, name("ssm_d"), {E}, 1.0f, 0.5f);
  if (norms) {
    add_floats(w, s, name("ssm_dt_norm.weight"), {R}, 1.0f, 0.1f);
    add_floats(w, s, name("ssm_b_norm.weight"), {N}, 1.0f, 0.1f);
    add_floats(w, s, name("ssm_c_norm.weight"), {N}, 1.0f, 0.1f);
  }
  add_matrix(w, s, name("ssm_out.weight"), E, D);
}

void write_file(gguf::GgufWriter& w, const SynthSpec& s, const std::filesystem::path& out, const gguf::Progress& progress) {
  spdlog::debug("synth: writing {} ({} bytes of weights, {}) to {}", s.name, w.tensor_bytes(), dtype_name(s.dtype),
                out.string());
  w.write(out, progress);
}

// Mamba and Mamba-2, as llama.cpp's converter writes them: d_inner = 2 dim, no heads and no
// feed-forward (both 0); ssm_a holds A = -exp(A_log) itself; the convolution and A stay F32
// whatever the dtype (llama.cpp's cpu ops read them so). Mamba-1: dt_rank = ceil(dim / 16).
// Mamba-2: time_step_rank is the number of heads, dt's bias, A and D one per head, a group norm.
void write_mamba(gguf::GgufWriter& w, const SynthSpec& s, const std::filesystem::path& out,
                 const gguf::Progress& progress) {
  const std::string a = s.arch;
  const bool v2 = a == "mamba2";
  const int64_t D = s.dim, E = 2 * s.dim, N = s.d_state, K = s.d_conv, G = s.ssm_groups;
  const int64_t H = v2 ? E / (s.head_dim > 0 ? s.head_dim : 16) : 0, R = v2 ? H : (s.dim + 15) / 16;
  const int64_t channels = E + 2 * G * N;  // Mamba-2's convolution covers x, B and C
  w.add_u32(a + ".feed_forward_length", 0);
  w.add_u32(a + ".attention.head_count", 0);
  add_ssm_sizes(w, a, K, E, N, R);
  if (v2) w.add_u32(a + ".ssm.group_count", static_cast<uint32_t>(G));
  if (s.dt_b_c_rms) w.add_bool(a + ".ssm.dt_b_c_rms", true);
  w.add_f32(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(s.eps));
  add_ends(w, s, D);
  for (int64_t l = 0; l < s.layers; ++l) {
    auto name = [l](const char* what) { return fmt::format("blk.{}.{}", l, what); };
    add_floats(w, s, name("attn_norm.weight"), {D}, 1.0f, 0.1f);
    if (!v2) {
      add_mamba1_mixer(w, s, l, D, K, E, N, R, false);
      continue;
    }
    add_matrix(w, s, name("ssm_in.weight"), D, 2 * E + 2 * G * N + H);
    add_floats(w, s, name("ssm_conv1d.weight"), {K, channels}, 0.0f, std::sqrt(3.0f / static_cast<float>(K)));
    add_floats(w, s, name("ssm_conv1d.bias"), {channels}, 0.0f, 0.5f);
    add_floats(w, s, name("ssm_dt.bias"), {H}, -1.0f, 1.0f);
    add_floats(w, s, name("ssm_a"), {1, H}, -1.0f, 0.9f);
    add_floats(w, s, name("ssm_d"), {1, H}, 1.0f, 0.5f);
    add_floats(w, s, name("ssm_norm.weight"), {E / G, G}, 1.0f, 0.1f);
    add_matrix(w, s, name("ssm_out.weight"), E, D);
  }
  write_file(w, s, out, progress);
}

// Jamba as llama.cpp's converter writes it: attention (no RoPE, no biases) on the odd layers and
// Mamba-1 (with its dt, B and C norm scales) on the even ones (attn_layer_offset 1, period 2);
// with experts, the even layers are mixtures (expert_layer_offset 0, period 2) and the odd ones
// dense SwiGLU.
void write_jamba(gguf::GgufWriter& w, const SynthSpec& s, const std::filesystem::path& out,
                 const gguf::Progress& progress) {
  const std::string a = s.arch;
  const int64_t D = s.dim, F = s.ffn, E = 2 * s.dim, N = s.d_state, K = s.d_conv, R = (s.dim + 15) / 16;
  const int64_t hd = s.dim / s.heads, Q = hd * s.heads, KV = hd * s.kv_heads;
  w.add_u32(a + ".feed_forward_length", static_cast<uint32_t>(F));
  w.add_u32(a + ".attention.head_count", static_cast<uint32_t>(s.heads));
  std::vector<uint32_t> kv(static_cast<size_t>(s.layers), 0);
  for (int64_t l = 1; l < s.layers; l += 2) kv[static_cast<size_t>(l)] = static_cast<uint32_t>(s.kv_heads);
  w.add_array(a + ".attention.head_count_kv", kv);
  w.add_f32(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(s.eps));
  if (s.experts > 0) {
    w.add_u32(a + ".expert_count", static_cast<uint32_t>(s.experts));
    w.add_u32(a + ".expert_used_count", static_cast<uint32_t>(s.experts_used));
  }
  add_ssm_sizes(w, a, K, E, N, R);
  add_ends(w, s, D);
  for (int64_t l = 0; l < s.layers; ++l) {
    auto name = [l](const char* what) { return fmt::format("blk.{}.{}", l, what); };
    add_floats(w, s, name("attn_norm.weight"), {D}, 1.0f, 0.1f);
    if (l % 2 == 1) {
      add_matrix(w, s, name("attn_q.weight"), D, Q);
      add_matrix(w, s, name("attn_k.weight"), D, KV);
      add_matrix(w, s, name("attn_v.weight"), D, KV);
      add_matrix(w, s, name("attn_output.weight"), Q, D);
    } else {
      add_mamba1_mixer(w, s, l, D, K, E, N, R, true);
    }
    add_floats(w, s, name("ffn_norm.weight"), {D}, 1.0f, 0.1f);
    if (s.experts > 0 && l % 2 == 0) {
      const std::string router = name("ffn_gate_inp.weight");
      w.add_tensor(router, DType::F32, {D, s.experts},
                   random_fill(s.seed, router, DType::F32, D, s.experts, 0.0f, std::sqrt(3.0f / static_cast<float>(D))));
      add_matrix(w, s, name("ffn_gate_exps.weight"), D, F, s.experts);
      add_matrix(w, s, name("ffn_down_exps.weight"), F, D, s.experts);
      add_matrix(w, s, name("ffn_up_exps.weight"), D, F, s.experts);
    } else {
      add_matrix(w, s, name("ffn_gate.weight"), D, F);
      add_matrix(w, s, name("ffn_down.weight"), F, D);
      add_matrix(w, s, name("ffn_up.weight"), D, F);
    }
  }
  write_file(w, s, out, progress);
}

}  // namespace

std::vector<std::string> synth_preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.push_back(p.name);
  return names;
}

SynthSpec synth_preset(std::string_view name) {
  for (const Preset& p : kPresets)
    if (name == p.name) return p.spec;
  auto names = synth_preset_names();
  throw Error(fmt::format("unknown synth preset '{}'{} (presets: {})", name, did_you_mean(name, names), join(names)));
}

std::vector<std::string> synth_archs() {
  std::vector<std::string> names;
  for (const Family& f : kFamilies) names.push_back(f.name);
  return names;
}

void synth_validate(const SynthSpec& s) {
  const std::vector<std::string> archs = synth_archs();
  if (std::find(archs.begin(), archs.end(), s.arch) == archs.end())
    throw Error(fmt::format("synth: architecture '{}' is not one synth writes{} (archs: {})", s.arch,
                            did_you_mean(s.arch, archs), join(archs)));
  if ((s.arch != "llama" && s.arch != "jamba" && s.experts > 0) || (s.arch != "llama" && s.rope_freqs))
    throw Error(fmt::format("synth: experts are llama's and jamba's, rope_freqs llama's; the {} family has {}", s.arch,
                            s.rope_freqs ? "no rope_freqs" : "no experts"));
  if (s.arch == "jamba" && s.layers < 2)
    throw Error(fmt::format("synth: jamba's attention and Mamba layers take 2 layers at least, not {}", s.layers));
  if (s.arch != "llama" && s.arch != "gemma2" && s.arch != "phi3" && s.arch != "starcoder2" && s.window > 0)
    throw Error(fmt::format("synth: a window is llama's (Mistral), phi3's, starcoder2's and gemma2's; the {} family "
                            "has none", s.arch));
  if (s.arch != "gemma2" && (s.attn_softcap > 0 || s.final_softcap > 0))
    throw Error(fmt::format("synth: soft caps are gemma2's; the {} family has none", s.arch));
  if (s.attn_softcap < 0 || s.final_softcap < 0 || !std::isfinite(s.attn_softcap) || !std::isfinite(s.final_softcap))
    throw Error(fmt::format("synth: soft caps {} and {} must be 0 (the family's) or positive", s.attn_softcap,
                            s.final_softcap));
  check_positive("dim", s.dim);
  check_positive("layers", s.layers);
  check_positive("ctx", s.ctx);
  const bool mamba2 = s.arch == "mamba2";
  if (family_of(s.arch).ssm) {
    if (s.experts > 0 || s.window > 0 || (s.head_dim > 0 && !mamba2) || s.rope_scale > 0)
      throw Error("synth: experts, a window, head_dim and rope_scale are attention's; mamba has none");
    check_positive("d_state", s.d_state);
    if (s.d_conv < 2 || s.d_conv > 64) throw Error(fmt::format("synth: d_conv {} must be 2 to 64", s.d_conv));
  }
  if (s.dt_b_c_rms && s.arch != "mamba")
    throw Error(fmt::format("synth: dt_b_c_rms is mamba's; the {} family has none", s.arch));
  if (s.ssm_groups != 1 && !mamba2)
    throw Error(fmt::format("synth: ssm_groups is mamba2's; the {} family has none", s.arch));
  if (mamba2) {
    const int64_t width = s.head_dim > 0 ? s.head_dim : 16, heads = 2 * s.dim / width;
    if (s.head_dim < 0 || (2 * s.dim) % width != 0 || s.ssm_groups < 1 || heads % s.ssm_groups != 0)
      throw Error(fmt::format("synth: mamba2's inner width {} (2 dim) must be a multiple of head_dim {}, and its "
                              "heads of ssm_groups {}", 2 * s.dim, width, s.ssm_groups));
  }
  if (s.vocab_gguf.empty() && (s.vocab < kMinGeneratedVocab || s.vocab > UINT32_MAX))
    throw Error(fmt::format("synth: vocab is {}, expected {} to {} for a generated tokenizer (or a vocab GGUF)", s.vocab,
                            kMinGeneratedVocab, UINT32_MAX));
  if (!(s.eps > 0) || !std::isfinite(s.eps)) throw Error(fmt::format("synth: eps {} must be a positive number", s.eps));
  if (!dtype_is_known(static_cast<uint32_t>(s.dtype)))
    throw Error(fmt::format("synth: dtype {} is not one of F32, F16, BF16, Q8_0, Q4_0", static_cast<uint32_t>(s.dtype)));
  if (family_of(s.arch).ssm) return;
  check_positive("ffn", s.ffn);
  check_positive("heads", s.heads);
  check_positive("kv_heads", s.kv_heads);
  if (s.dim % s.heads) throw Error(fmt::format("synth: dim {} is not a multiple of heads {}", s.dim, s.heads));
  if (s.heads % s.kv_heads)
    throw Error(fmt::format("synth: heads {} is not a multiple of kv_heads {}", s.heads, s.kv_heads));
  if (s.head_dim < 0 || s.head_dim > UINT32_MAX)
    throw Error(fmt::format("synth: head_dim {} must be 0 (dim / heads) or a positive size", s.head_dim));
  if (head_dim_of(s) % 2)
    throw Error(fmt::format("synth: head size {} (dim {} / heads {}) is odd; rotary embeddings need it even",
                            head_dim_of(s), s.dim, s.heads));
  if (!(s.rope_base > 0) || !std::isfinite(s.rope_base))
    throw Error(fmt::format("synth: rope_base {} must be a positive number", s.rope_base));
  if (s.experts < 0 || s.experts > kMaxExperts || s.experts_used < 0 || s.experts_used > s.experts ||
      (s.experts > 0) != (s.experts_used > 0))
    throw Error(fmt::format("synth: experts {} and experts_used {} must be both 0 (dense) or 1 <= experts_used <= "
                            "experts <= {}",
                            s.experts, s.experts_used, kMaxExperts));
  if (s.window < 0 || s.window > INT32_MAX)
    throw Error(fmt::format("synth: window {} must be 0 (none) to {}", s.window, INT32_MAX));
  if (s.rope_scale != 0 && !(s.rope_scale > 0 && std::isfinite(s.rope_scale)))
    throw Error(fmt::format("synth: rope_scale {} must be 0 (none) or a positive factor", s.rope_scale));
}

void synth_write(const SynthSpec& s, const std::filesystem::path& out, const gguf::Progress& progress) {
  synth_validate(s);
  gguf::GgufWriter w;
  const std::string a = s.arch;
  w.add_string("general.architecture", a);
  w.add_string("general.name", s.name);
  w.add_u32("general.file_type", llama_file_type(s.dtype));
  w.add_u32(a + ".context_length", static_cast<uint32_t>(s.ctx));
  w.add_u32(a + ".embedding_length", static_cast<uint32_t>(s.dim));
  w.add_u32(a + ".block_count", static_cast<uint32_t>(s.layers));
  const Family& fam = family_of(a);
  if (fam.ssm) return write_mamba(w, s, out, progress);
  if (a == "jamba") return write_jamba(w, s, out, progress);
  w.add_u32(a + ".feed_forward_length", static_cast<uint32_t>(s.ffn));
  w.add_u32(a + ".attention.head_count", static_cast<uint32_t>(s.heads));
  w.add_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(s.kv_heads));
  const int64_t hd = head_dim_of(s);
  if (s.head_dim > 0) {
    w.add_u32(a + ".attention.key_length", static_cast<uint32_t>(hd));
    w.add_u32(a + ".attention.value_length", static_cast<uint32_t>(hd));
  }
  // A quarter of the head, kept even (NeoX pairs i with i + rope_dim / 2).
  w.add_u32(a + ".rope.dimension_count", static_cast<uint32_t>(fam.quarter_rope ? std::max<int64_t>(2, hd / 8 * 2) : hd));
  if (fam.parallel) w.add_bool(a + ".use_parallel_residual", true);
  w.add_f32(a + ".rope.freq_base", static_cast<float>(s.rope_base));
  w.add_f32(a + "." + fam.eps_key, static_cast<float>(s.eps));
  if (s.experts > 0) {
    w.add_u32(a + ".expert_count", static_cast<uint32_t>(s.experts));
    w.add_u32(a + ".expert_used_count", static_cast<uint32_t>(s.experts_used));
  }
  if (s.window > 0) w.add_u32(a + ".attention.sliding_window", static_cast<uint32_t>(s.window));
  if (fam.sandwich) {  // Gemma 2's defaults unless the spec sets them; the window on the even layers
    w.add_u32(a + ".attention.sliding_window_pattern", 2);
    w.add_f32(a + ".attn_logit_softcapping", static_cast<float>(s.attn_softcap > 0 ? s.attn_softcap : 50.0));
    w.add_f32(a + ".final_logit_softcapping", static_cast<float>(s.final_softcap > 0 ? s.final_softcap : 30.0));
  }
  if (s.rope_scale > 0) {
    w.add_string(a + ".rope.scaling.type", "linear");
    w.add_f32(a + ".rope.scaling.factor", static_cast<float>(s.rope_scale));
  }
  const int64_t vocab = s.vocab_gguf.empty() ? add_generated_vocab(w, s.vocab) : copy_vocab(w, s.vocab_gguf);

  const int64_t D = s.dim, F = s.ffn, Q = hd * s.heads, KV = hd * s.kv_heads, half = hd / 2;
  // `count` matrices of [outs][in] stacked (ne = {in, outs, count}) for the experts, else one.
  auto matrix = [&](const std::string& name, int64_t in, int64_t outs, int64_t count = 0) {
    add_matrix(w, s, name, in, outs, count);
  };
  // Biases kept F32 as llama.cpp's converter keeps them, wide enough to matter.
  auto bias = [&](const std::string& name, int64_t n) {
    w.add_tensor(name, DType::F32, {n}, random_fill(s.seed, name, DType::F32, n, 1, 0.0f, 0.5f));
  };
  // A norm's scale over `n` values (the width, or one head's for q/k norms), and for LayerNorm its shift.
  auto norm = [&](const std::string& prefix, int64_t n = 0) {
    if (n == 0) n = D;
    const std::string scale = prefix + ".weight";
    w.add_tensor(scale, DType::F32, {n}, random_fill(s.seed, scale, DType::F32, n, 1, 1.0f, 0.1f));
    if (fam.layer_norm && n == D) bias(prefix + ".bias", n);
  };
  matrix("token_embd.weight", D, vocab);
  norm("output_norm");
  if (s.rope_freqs)
    w.add_tensor("rope_freqs.weight", DType::F32, {half}, [half](std::span<uint8_t> dst) {
      for (int64_t i = 0; i < half; ++i) {
        const float f = 1.0f + 7.0f * static_cast<float>(i * i) / static_cast<float>(half * half);
        std::memcpy(dst.data() + 4 * i, &f, 4);
      }
    });
  if (!s.tied_output && !fam.sandwich) matrix("output.weight", D, vocab);  // Gemma ties its head
  for (int64_t l = 0; l < s.layers; ++l) {
    auto name = [l](const char* what) { return fmt::format("blk.{}.{}.weight", l, what); };
    auto part = [l](const char* what) { return fmt::format("blk.{}.{}", l, what); };
    if (fam.fused) {
      matrix(name("attn_qkv"), D, Q + 2 * KV);
      if (fam.qkv_bias) bias(part("attn_qkv.bias"), Q + 2 * KV);
    } else {
      matrix(name("attn_q"), D, Q);
      matrix(name("attn_k"), D, KV);
      matrix(name("attn_v"), D, KV);
      if (fam.qkv_bias) {
        bias(part("attn_q.bias"), Q);
        bias(part("attn_k.bias"), KV);
        bias(part("attn_v.bias"), KV);
      }
    }
    matrix(name("attn_output"), Q, D);
    if (fam.out_bias) bias(part("attn_output.bias"), D);
    if (fam.qk_norm) {
      norm(part("attn_q_norm"), hd);
      norm(part("attn_k_norm"), hd);
    }
    norm(part("attn_norm"));
    if (fam.sandwich) {
      norm(part("post_attention_norm"));
      norm(part("post_ffw_norm"));
    }
    if (s.experts > 0) {
      // The router stays F32 whatever the dtype: llama.cpp never quantises it either (a rounded
      // router changes which experts run, not just how precisely).
      const std::string router = name("ffn_gate_inp");
      w.add_tensor(router, DType::F32, {D, s.experts},
                   random_fill(s.seed, router, DType::F32, D, s.experts, 0.0f, std::sqrt(3.0f / static_cast<float>(D))));
      matrix(name("ffn_gate_exps"), D, F, s.experts);
      matrix(name("ffn_down_exps"), F, D, s.experts);
      matrix(name("ffn_up_exps"), D, F, s.experts);
    } else {
      if (fam.gated && !fam.fused) matrix(name("ffn_gate"), D, F);
      matrix(name("ffn_down"), F, D);
      matrix(name("ffn_up"), D, fam.fused && fam.gated ? 2 * F : F);
      if (fam.ffn_bias) {
        bias(part("ffn_up.bias"), F);
        bias(part("ffn_down.bias"), D);
      }
    }
    norm(part("ffn_norm"));
  }
  write_file(w, s, out, progress);
}

}  // namespace semline
