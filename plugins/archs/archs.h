// Architecture templates shipped with semline, one file per family.
#pragma once

#include <semline/registry.h>

namespace semline::archs {

class HParamsReader;

ArchTemplate llama_template();
ArchTemplate gpt2_template();
ArchTemplate qwen2_template();
ArchTemplate qwen3_template();
ArchTemplate phi3_template();
ArchTemplate gptneox_template();
ArchTemplate stablelm_template();
ArchTemplate starcoder2_template();
ArchTemplate gemma2_template();
ArchTemplate mamba_template();
ArchTemplate mamba2_template();
ArchTemplate jamba_template();

// Stations the llama lineage shares (llama.cpp's tensor names).
// The lookup of token_embd.weight rows.
StationSpec token_embedding();
// RMSNorm over blk.{L}.NAME.weight (or NAME.weight outside the blocks); LayerNorm over its
// .weight and .bias.
StationSpec rms_norm(const std::string& name, bool in_block = true);
StationSpec layer_norm(const std::string& name, bool in_block = true);
// Attention over attn_{q,k,v,output} with RoPE (Llama 3's optional rope_freqs.weight), and `extra`
// bindings (qwen2's biases, qwen3's q/k norms).
StationSpec rope_attention(std::vector<TensorBinding> extra);
// Biases of the q, k and v maps (attn_{q,k,v}.bias), for rope_attention's extra bindings.
std::vector<TensorBinding> qkv_biases(bool optional = false);
// The GELU MLP with biases (gpt2, starcoder2, gptneox): ffn_{up,down}.{weight,bias}.
StationSpec gelu_mlp();
// {arch}.attention.sliding_window (absent: 0, no window), at most the positions a sequence holds.
int64_t read_sliding_window(const ModelView& model, const HParamsReader& r);
// The dense SwiGLU feed-forward: ffn_{gate,up,down}.
StationSpec swiglu_ffn();
// ffn_{gate,up,down} or a router (ffn_gate_inp) and expert stacks ffn_{gate,up,down}_exps, all
// optional: the ffn variants' supports() choose dense or moe by what the layer has.
StationSpec dense_or_moe_ffn();
// {arch}.expert_count and expert_used_count (both or neither) into hp.
void read_experts(const ModelView& model, const HParamsReader& r, HParams& hp);
// Mamba-1's mixer over blk.{L}.ssm_*; with `norms`, Jamba's dt, B and C norm scales too.
StationSpec mamba_mixer(bool norms = false);
// What mamba, mamba2 and jamba read alike: the ssm.* sizes (ssm_d_conv, ssm_d_inner, ssm_d_state
// into hp.extra), checked.
void read_ssm_sizes(const ModelView& model, const HParamsReader& r, HParams& hp);

// The head over output.weight, or over the token embedding where the model ties the two and
// carries no output.weight (llama.cpp's names).
StationSpec tied_head();

// Rejects hyper-parameters no model can have (zero sizes, heads that do not divide the width).
void check_hparams(const ModelView& model, const HParams& hp);

}  // namespace semline::archs
