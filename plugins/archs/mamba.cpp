// Mamba (Mamba-1) and Mamba-2 as data, as llama.cpp's mamba and mamba2 archs read them: blocks of
// one pre-norm sub-layer, RMSNorm -> the selective state-space mixer (ssm/mamba, ssm/mamba2), no
// attention and no feed-forward; a final RMSNorm and a tied or own head. Falcon-Mamba is Mamba-1
// with ssm.dt_b_c_rms (dt, B and C RMS-normalised without a scale). Every norm, Mamba-2's group
// norm included, uses attention.layer_norm_rms_epsilon.
#include "archs.h"
#include "hparams_reader.h"

namespace semline::archs {

namespace {

std::vector<std::string> mamba_keys(bool v2) {
  std::vector<std::string> keys = {"context_length",      "embedding_length",
                                   "feed_forward_length", "block_count",
                                   "vocab_size",          "attention.head_count",
                                   "attention.layer_norm_rms_epsilon",
                                   "ssm.conv_kernel",     "ssm.inner_size",
                                   "ssm.state_size",      "ssm.time_step_rank"};
  keys.push_back(v2 ? "ssm.group_count" : "ssm.dt_b_c_rms");
  return keys;
}

// What both read: the shape, the norm epsilon, the convolution, inner and state sizes; Mamba-1's
// time_step_rank is dt's rank, Mamba-2's the number of heads.
HParams read_ssm(const ModelView& model, const HParamsReader& r, const std::string& arch) {
  HParams hp;
  hp.arch = arch;
  hp.n_embd = r.integer("embedding_length");
  hp.n_layer = r.integer("block_count");
  const auto vocab = r.find_integer("vocab_size");
  hp.n_vocab = vocab ? *vocab : static_cast<int64_t>(r.find_array_length("tokenizer.ggml.tokens").value_or(0));
  hp.n_ctx_train = r.find_integer("context_length").value_or(2048);
  hp.norm_eps = r.number("attention.layer_norm_rms_epsilon");
  hp.rope_type = RopeType::None;
  // llama.cpp's converter writes 0 for both: a Mamba block has neither heads nor a feed-forward.
  for (const char* key : {"feed_forward_length", "attention.head_count"})
    if (const auto v = r.find_integer(key); v && *v != 0)
      throw Error(model.path() + ": " + r.full(key) + " = " + std::to_string(*v) +
                  "; a Mamba block has no attention heads and no feed-forward network (0)");
  if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_vocab <= 0 || !(hp.norm_eps > 0))
    throw Error(model.path() + ": " + arch + " hyper-parameters: embedding_length, block_count, the vocabulary size "
                "and the norm epsilon must be > 0");
  read_ssm_sizes(model, r, hp);
  return hp;
}

}  // namespace

void read_ssm_sizes(const ModelView& model, const HParamsReader& r, HParams& hp) {
  for (const char* key : {"ssm.conv_kernel", "ssm.inner_size", "ssm.state_size", "ssm.time_step_rank"})
    if (r.integer(key) <= 0 || (std::string_view(key) == "ssm.conv_kernel" && r.integer(key) < 2))
      throw Error(model.path() + ": " + r.full(key) + " = " + std::to_string(r.integer(key)) +
                  (std::string_view(key) == "ssm.conv_kernel" ? " must be 2 or more" : " must be > 0"));
  hp.extra["ssm_d_conv"] = static_cast<double>(r.integer("ssm.conv_kernel"));
  hp.extra["ssm_d_inner"] = static_cast<double>(r.integer("ssm.inner_size"));
  hp.extra["ssm_d_state"] = static_cast<double>(r.integer("ssm.state_size"));
}

namespace {

HParams read_mamba(const ModelView& model) {
  static const std::vector<std::string> keys = mamba_keys(false);
  HParamsReader r(model, "mamba", keys);
  HParams hp = read_ssm(model, r, "mamba");
  hp.extra["ssm_dt_rank"] = static_cast<double>(r.integer("ssm.time_step_rank"));
  if (r.find_bool("ssm.dt_b_c_rms").value_or(false)) hp.extra["ssm_dt_b_c_rms"] = 1;
  return hp;
}

HParams read_mamba2(const ModelView& model) {
  static const std::vector<std::string> keys = mamba_keys(true);
  HParamsReader r(model, "mamba2", keys);
  HParams hp = read_ssm(model, r, "mamba2");
  const int64_t inner = r.integer("ssm.inner_size"), heads = r.integer("ssm.time_step_rank");
  const int64_t groups = r.integer("ssm.group_count");
  if (groups <= 0 || inner % heads != 0 || heads % groups != 0)
    throw Error(model.path() + ": " + r.full("ssm.inner_size") + " = " + std::to_string(inner) +
                " must be a multiple of the heads (" + r.full("ssm.time_step_rank") + " = " + std::to_string(heads) +
                "), and they of " + r.full("ssm.group_count") + " = " + std::to_string(groups));
  hp.extra["ssm_n_head"] = static_cast<double>(heads);
  hp.extra["ssm_n_group"] = static_cast<double>(groups);
  hp.extra["ssm_group_width"] = static_cast<double>(inner / groups);
  return hp;
}

}  // namespace

StationSpec mamba_mixer(bool norms) {
  StationSpec st{"ssm",
                 StageKind::Ssm,
                 "mamba",
                 {{"in", "blk.{L}.ssm_in.weight", {"n_embd", "2*ssm_d_inner"}},
                  {"conv", "blk.{L}.ssm_conv1d.weight", {"ssm_d_conv", "ssm_d_inner"}},
                  {"conv_bias", "blk.{L}.ssm_conv1d.bias", {"ssm_d_inner"}},
                  {"x", "blk.{L}.ssm_x.weight", {"ssm_d_inner", "ssm_dt_rank+2*ssm_d_state"}},
                  {"dt", "blk.{L}.ssm_dt.weight", {"ssm_dt_rank", "ssm_d_inner"}},
                  {"dt_bias", "blk.{L}.ssm_dt.bias", {"ssm_d_inner"}},
                  {"a", "blk.{L}.ssm_a", {"ssm_d_state", "ssm_d_inner"}},
                  {"d", "blk.{L}.ssm_d", {"ssm_d_inner"}},
                  {"out", "blk.{L}.ssm_out.weight", {"ssm_d_inner", "n_embd"}}}};
  if (norms)
    st.tensors.insert(st.tensors.end(), {{"dt_norm", "blk.{L}.ssm_dt_norm.weight", {"ssm_dt_rank"}},
                                         {"b_norm", "blk.{L}.ssm_b_norm.weight", {"ssm_d_state"}},
                                         {"c_norm", "blk.{L}.ssm_c_norm.weight", {"ssm_d_state"}}});
  return st;
}

namespace {

StationSpec mamba2_mixer() {
  return {"ssm",
          StageKind::Ssm,
          "mamba2",
          {{"in", "blk.{L}.ssm_in.weight", {"n_embd", "2*ssm_d_inner+2*ssm_n_group*ssm_d_state+ssm_n_head"}},
           {"conv", "blk.{L}.ssm_conv1d.weight", {"ssm_d_conv", "ssm_d_inner+2*ssm_n_group*ssm_d_state"}},
           {"conv_bias", "blk.{L}.ssm_conv1d.bias", {"ssm_d_inner+2*ssm_n_group*ssm_d_state"}},
           {"dt_bias", "blk.{L}.ssm_dt.bias", {"ssm_n_head"}},
           {"a", "blk.{L}.ssm_a", {"1", "ssm_n_head"}},
           {"d", "blk.{L}.ssm_d", {"1", "ssm_n_head"}},
           {"norm", "blk.{L}.ssm_norm.weight", {"ssm_group_width", "ssm_n_group"}},
           {"out", "blk.{L}.ssm_out.weight", {"ssm_d_inner", "n_embd"}}}};
}

}  // namespace

ArchTemplate mamba_template() {
  return {
      .name = "mamba",
      .description = "Mamba (and Falcon-Mamba): RMSNorm, a selective state-space mixer with a recurrent state; no "
                     "attention, no feed-forward",
      .embedding = token_embedding(),
      .block = {{rms_norm("attn_norm"), mamba_mixer()}},
      .output_norm = rms_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_mamba,
      .metadata_keys = mamba_keys(false),
  };
}

ArchTemplate mamba2_template() {
  return {
      .name = "mamba2",
      .description = "Mamba-2: RMSNorm, a state-space mixer of heads and groups with a gated group norm and a "
                     "recurrent state; no attention, no feed-forward",
      .embedding = token_embedding(),
      .block = {{rms_norm("attn_norm"), mamba2_mixer()}},
      .output_norm = rms_norm("output_norm", false),
      .head = tied_head(),
      .read_hparams = read_mamba2,
      .metadata_keys = mamba_keys(true),
  };
}

}  // namespace semline::archs
