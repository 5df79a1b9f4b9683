// semline synth: a GGUF with seeded random weights, for tests and for benchmarks at real sizes.
#include <spdlog/spdlog.h>

#include "app.h"
#include "core/model/synth.h"
#include "core/util/text.h"

namespace semline::app {

void add_synth_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write a seeded random-weight GGUF of a given shape");
  struct Opts {
    std::string preset, out, type = "f32", vocab, arch = "llama";
    bool rope_freqs = false, dt_b_c_rms = false;
    double rope_scale = 0, attn_softcap = 0, final_softcap = 0;
    int64_t head_dim = 0;
    std::optional<int64_t> dim, ffn, layers, heads, kv_heads, ctx, experts, experts_used, window, d_state, d_conv, ssm_groups;
    uint64_t seed = 1;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--preset", o->preset, "Shape preset (tiny, llama-134m, llama-1b, mixtral-tiny, mixtral-1b)")
      ->required();
  cmd->add_option("-o,--output", o->out, "GGUF file to write")->required();
  cmd->add_option("--arch", o->arch, "Model family: " + join(synth_archs(), ", ") + " (the preset gives the shape)")
      ->check(CLI::IsMember(synth_archs()));
  cmd->add_option("-t,--type", o->type, "f32 | f16 | q8_0 | q4_0")->check(CLI::IsMember({"f32", "f16", "q8_0", "q4_0"}));
  cmd->add_option("--seed", o->seed, "Seed of the weights");
  cmd->add_option("--vocab", o->vocab, "GGUF whose tokenizer to copy (its size sets the vocabulary)");
  cmd->add_option("--dim", o->dim, "Override: model width");
  cmd->add_option("--ffn", o->ffn, "Override: feed-forward width");
  cmd->add_option("--layers", o->layers, "Override: blocks");
  cmd->add_option("--heads", o->heads, "Override: attention heads");
  cmd->add_option("--kv-heads", o->kv_heads, "Override: key/value heads");
  cmd->add_option("--ctx", o->ctx, "Override: context length");
  cmd->add_option("--experts", o->experts, "Override: experts per layer (0: a dense feed-forward)");
  cmd->add_option("--experts-used", o->experts_used, "Override: experts each token uses");
  cmd->add_option("--window", o->window,
                  "Sliding attention window in positions ({arch}.attention.sliding_window: llama, phi3, starcoder2, gemma2)");
  cmd->add_option("--attn-softcap", o->attn_softcap, "gemma2: the attention logits' soft cap (0: Gemma 2's 50)");
  cmd->add_option("--final-softcap", o->final_softcap, "gemma2: the output logits' soft cap (0: Gemma 2's 30)");
  cmd->add_flag("--rope-freqs", o->rope_freqs, "Write Llama 3's rope_freqs.weight (per-pair frequency divisors)");
  cmd->add_option("--rope-scale", o->rope_scale, "Linear RoPE scaling factor: positions divided by it (0: none)");
  cmd->add_option("--d-state", o->d_state, "mamba: state values per channel (default 16)");
  cmd->add_option("--d-conv", o->d_conv, "mamba: convolution width (default 4)");
  cmd->add_flag("--dt-b-c-rms", o->dt_b_c_rms, "mamba: RMS-normalise dt, B and C (Falcon-Mamba)");
  cmd->add_option("--ssm-groups", o->ssm_groups, "mamba2: groups of heads sharing B and C (default 1)");
  cmd->add_option("--head-dim", o->head_dim, "Override: head size (0: dim / heads), written as attention.key_length; mamba2: its heads' width (0: 16)");
  cmd->callback([o] {
    SynthSpec s = synth_preset(o->preset);
    if (o->dim) s.dim = *o->dim;
    if (o->ffn) s.ffn = *o->ffn;
    if (o->layers) s.layers = *o->layers;
    if (o->heads) s.heads = *o->heads;
    if (o->kv_heads) s.kv_heads = *o->kv_heads;
    if (o->ctx) s.ctx = *o->ctx;
    if (o->experts) s.experts = *o->experts;
    if (o->experts_used) s.experts_used = *o->experts_used;
    if (o->window) s.window = *o->window;
    if (o->d_state) s.d_state = *o->d_state;
    if (o->d_conv) s.d_conv = *o->d_conv;
    if (o->ssm_groups) s.ssm_groups = *o->ssm_groups;
    s.dt_b_c_rms = o->dt_b_c_rms;
    if (!o->vocab.empty()) s.vocab_gguf = o->vocab;
    s.arch = o->arch;
    s.rope_freqs = o->rope_freqs;
    s.rope_scale = o->rope_scale;
    s.head_dim = o->head_dim;
    s.attn_softcap = o->attn_softcap;
    s.final_softcap = o->final_softcap;
    s.seed = o->seed;
    s.dtype = o->type == "f16" ? DType::F16 : o->type == "q8_0" ? DType::Q8_0 : o->type == "q4_0" ? DType::Q4_0 : DType::F32;
    Progress bar("synth");
    synth_write(s, o->out, std::ref(bar));
    spdlog::info("wrote {}", o->out);
  });
}

}  // namespace semline::app
