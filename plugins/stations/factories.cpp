#include "stations/factories.h"

#include "stations/stations.h"

namespace semline::stations {

void add_stations(Registry& r, const std::string& backend, KernelsOf kernels_of) {
  using Make = std::function<std::unique_ptr<Stage>(const StageContext&, Kernels&)>;
  using Check = std::vector<std::string> (*)(const StageContext&, std::string_view);
  auto add = [&](StageKind kind, const char* variant, const char* description, Make make, Check check = nullptr) {
    StageEntry e = stage_entry(kind, variant, backend, description, 10,
                               [kernels_of, make](const StageContext& ctx) { return make(ctx, kernels_of(ctx)); });
    if (check) e.supports = [backend, check](const StageContext& ctx) { return check(ctx, backend); };
    r.add_stage(std::move(e));
  };
  add(StageKind::Embedding, "lookup",
      "token embedding rows (plus learned position rows when the model has them), as float", make_embedding_lookup);
  add(StageKind::Norm, "rms", "RMSNorm with a learned scale",
      [](const StageContext& ctx, Kernels& k) { return make_norm(ctx, k, NormKind::Rms); }, norm_rms_supports);
  add(StageKind::Norm, "layer", "LayerNorm with a learned scale and shift",
      [](const StageContext& ctx, Kernels& k) { return make_norm(ctx, k, NormKind::Layer); });
  add(StageKind::Ffn, "dense",
      "feed-forward: down(silu(gate x) * up x) (SwiGLU), or down(gelu(up x)) without a gate; optional biases",
      make_ffn_dense, ffn_dense_supported);
  add(StageKind::Ffn, "moe",
      "mixture of SwiGLU experts (Mixtral): router softmax, top n_expert_used experts with weights renormalised; "
      "only the chosen experts' weights are read",
      make_ffn_moe, ffn_moe_supported);
  add(StageKind::Head, "dense", "output logits (separate or tied embedding weights)", make_head_dense);
}

std::unique_ptr<Stage> make_ssm_mamba(const StageContext& ctx, Kernels& k, SsmKernels& s);
std::vector<std::string> ssm_mamba_supported(const StageContext& ctx, std::string_view backend);
std::unique_ptr<Stage> make_ssm_mamba2(const StageContext& ctx, Kernels& k, SsmKernels& s);
std::vector<std::string> ssm_mamba2_supported(const StageContext& ctx, std::string_view backend);

void add_ssm_stations(Registry& r, const std::string& backend, KernelsOf kernels_of, SsmKernelsOf ssm_kernels_of) {
  using Make = std::unique_ptr<Stage> (*)(const StageContext&, Kernels&, SsmKernels&);
  using Check = std::vector<std::string> (*)(const StageContext&, std::string_view);
  auto add = [&](const char* variant, const char* description, Make make, Check check) {
    StageEntry e = stage_entry(StageKind::Ssm, variant, backend, description, 10,
                               [kernels_of, ssm_kernels_of, make](const StageContext& ctx) {
                                 return make(ctx, kernels_of(ctx), ssm_kernels_of(ctx));
                               });
    e.supports = [backend, check](const StageContext& ctx) { return check(ctx, backend); };
    r.add_stage(std::move(e));
  };
  add("mamba",
      "Mamba-1 selective state-space mixer: causal convolution and selective scan, a recurrent state per sequence "
      "instead of a KV cache",
      make_ssm_mamba, ssm_mamba_supported);
  add("mamba2",
      "Mamba-2 state-space mixer: heads sharing a scalar decay, groups sharing B and C, a gated group norm; a "
      "recurrent state per sequence",
      make_ssm_mamba2, ssm_mamba2_supported);
}

}  // namespace semline::stations
