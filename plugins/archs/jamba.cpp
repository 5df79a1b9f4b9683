// Jamba as data, as llama.cpp's jamba arch reads it: a hybrid whose blocks are RMSNorm -> a mixer,
// RMSNorm -> a feed-forward, the mixer attention on some layers and Mamba-1 on the others. Which
// is which is attention.head_count_kv, one value per layer (0: a Mamba layer); llama.cpp's
// converter writes it from Jamba's attn_layer_offset and attn_layer_period, and so must it read
// here (a regular pattern; another is refused). Attention has no positional encoding at all and
// no biases; the Mamba mixer normalises dt, B and C with scales of its own. A layer is a mixture of
// experts where it has a router (expert_layer_offset / period in Jamba's config): its chosen
// experts weigh by their softmax over all experts, not renormalised.
#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

std::vector<std::string> jamba_keys() {
  return {"context_length",    "embedding_length",     "feed_forward_length",     "block_count",
          "vocab_size",        "attention.head_count", "attention.head_count_kv", "attention.layer_norm_rms_epsilon",
          "expert_count",      "expert_used_count",    "ssm.conv_kernel",         "ssm.inner_size",
          "ssm.state_size",    "ssm.time_step_rank"};
}

// The offset and period of `layers` (Jamba's attn_layer_* and expert_layer_*: offset, offset +
// period, ... up to the last layer); any other pattern is refused naming `what`.
std::pair<int64_t, int64_t> regular_layers(const ModelView& model, const std::vector<int64_t>& layers, int64_t n_layer,
                                           const std::string& what) {
  if (layers.empty()) throw Error(model.path() + ": " + what + ": on no layer");
  const int64_t offset = layers[0], period = layers.size() > 1 ? layers[1] - layers[0] : n_layer;
  bool regular = offset + period * static_cast<int64_t>(layers.size()) >= n_layer;
  for (size_t i = 0; i < layers.size(); ++i) regular = regular && layers[i] == offset + static_cast<int64_t>(i) * period;
  if (!regular)
    throw Error(model.path() + ": " + what + ": on layers that are not one offset and period apart up to the last "
                "(Jamba's layer offset and period)");
  return {offset, period};
}

HParams read_jamba(const ModelView& model) {
  static const std::vector<std::string> keys = jamba_keys();
  HParamsReader r(model, "jamba", keys);
  HParams hp = r.common();
  hp.n_ctx_train = r.find_integer("context_length").value_or(2048);
  hp.norm_eps = r.number("attention.layer_norm_rms_epsilon");
  hp.rope_type = RopeType::None;
  read_experts(model, r, hp);
  if (hp.n_expert > 0) hp.extra["expert_weights_softmax"] = 1;
  read_ssm_sizes(model, r, hp);
  hp.extra["ssm_dt_rank"] = static_cast<double>(r.integer("ssm.time_step_rank"));
  // The layers with kv heads attend; they must be offset, offset + period, ...
  const std::string kv_key = r.full("attention.head_count_kv");
  const MetaValue* kv = model.meta(kv_key);
  if (!kv || kv->type != MetaType::ARRAY || kv->count != static_cast<uint64_t>(hp.n_layer) ||
      !(kv->elem == MetaType::U32 || kv->elem == MetaType::I32))
    throw Error(model.path() + ": " + kv_key + " must be an array of " + std::to_string(hp.n_layer) +
                " integers (block_count), one per layer: 0 for a Mamba layer, the kv heads of an attention layer");
  std::vector<int64_t> attention;
  int64_t kv_heads = 0;
  for (uint64_t l = 0; l < kv->count; ++l) {
    const int64_t v = kv->elem == MetaType::U32 ? static_cast<int64_t>(kv->at<uint32_t>(l)) : kv->at<int32_t>(l);
    if (v < 0 || (v > 0 && kv_heads > 0 && v != kv_heads))
      throw Error(model.path() + ": " + kv_key + "[" + std::to_string(l) + "] = " + std::to_string(v) +
                  "; every attention layer must have the same kv heads (" + std::to_string(kv_heads) + ")");
    if (v > 0) kv_heads = v, attention.push_back(static_cast<int64_t>(l));
  }
  hp.n_head_kv = kv_heads;
  const auto [offset, period] = regular_layers(model, attention, hp.n_layer, kv_key);
  hp.extra["attn_layer_offset"] = static_cast<double>(offset);
  hp.extra["attn_layer_period"] = static_cast<double>(period);
  if (hp.n_expert > 0) {
    // The layers with a router are the mixtures (Jamba's expert_layer_offset and period); the
    // ffn stations' checks read them so.
    std::vector<int64_t> experts;
    for (int64_t l = 0; l < hp.n_layer; ++l)
      if (model.weight("blk." + std::to_string(l) + ".ffn_gate_inp.weight")) experts.push_back(l);
    const auto [e_offset, e_period] = regular_layers(model, experts, hp.n_layer, "ffn_gate_inp (the experts' routers)");
    hp.extra["expert_layer_offset"] = static_cast<double>(e_offset);
    hp.extra["expert_layer_period"] = static_cast<double>(e_period);
  }
  check_hparams(model, hp);
  hp.head_dim = hp.n_embd / hp.n_head;
  return hp;
}

// 0: an attention block, 1: a Mamba block.
size_t jamba_block_of(const HParams& hp, int32_t layer) {
  const int64_t offset = static_cast<int64_t>(hp.extra_or("attn_layer_offset", 0));
  const int64_t period = static_cast<int64_t>(hp.extra_or("attn_layer_period", 1));
  return layer >= offset && (layer - offset) % period == 0 ? 0 : 1;
}

StationSpec plain_attention() {
  return {"attention", StageKind::Attention, "flash",
          {{"q", "blk.{L}.attn_q.weight", {"n_embd", "n_head*head_dim"}},
           {"k", "blk.{L}.attn_k.weight", {"n_embd", "n_head_kv*head_dim"}},
           {"v", "blk.{L}.attn_v.weight", {"n_embd", "n_head_kv*head_dim"}},
           {"o", "blk.{L}.attn_output.weight", {"n_head*head_dim", "n_embd"}}}};
}

}  // namespace

ArchTemplate jamba_template() {
  return {
      .name = "jamba",
      .description = "Jamba: a hybrid of attention (no positional encoding) and Mamba layers, dense or "
                     "mixture-of-experts SwiGLU feed-forward",
      .embedding = token_embedding(),
      .block = {{rms_norm("attn_norm"), plain_attention()}, {rms_norm("ffn_norm"), dense_or_moe_ffn()}},
      .other_blocks = {{{rms_norm("attn_norm"), mamba_mixer(true)}, {rms_norm("ffn_norm"), dense_or_moe_ffn()}}},
      .block_of = jamba_block_of,
      .output_norm = rms_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_jamba,
      .metadata_keys = jamba_keys(),
  };
}

}  // namespace semline::archs
