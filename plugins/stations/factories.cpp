#include "stations/factories.h"

#include "stations/stations.h"

namespace semline::stations {

void add_stations(Registry& r, const std::string& backend, KernelsOf kernels_of) {
  auto entry = [&](StageKind kind, const char* variant, const char* description,
                   std::function<std::unique_ptr<Stage>(const StageContext&, Kernels&)> make) {
    return stage_entry(kind, variant, backend, description, 10,
                       [kernels_of, make](const StageContext& ctx) { return make(ctx, kernels_of(ctx)); });
  };
  r.add_stage(entry(StageKind::Embedding, "lookup",
                    "token embedding rows (plus learned position rows when the model has them), as float",
                    make_embedding_lookup));
  StageEntry rms = entry(StageKind::Norm, "rms", "RMSNorm with a learned scale",
                         [](const StageContext& ctx, Kernels& k) { return make_norm(ctx, k, NormKind::Rms); });
  rms.supports = [backend](const StageContext& ctx) { return norm_rms_supports(ctx, backend); };
  r.add_stage(std::move(rms));
  r.add_stage(entry(StageKind::Norm, "layer", "LayerNorm with a learned scale and shift",
                    [](const StageContext& ctx, Kernels& k) { return make_norm(ctx, k, NormKind::Layer); }));
  StageEntry ffn = entry(StageKind::Ffn, "dense",
                         "feed-forward: down(silu(gate x) * up x) (SwiGLU), or down(gelu(up x)) without a gate; "
                         "optional biases",
                         make_ffn_dense);
  ffn.supports = [backend](const StageContext& ctx) { return ffn_dense_supported(ctx, backend); };
  r.add_stage(std::move(ffn));
  StageEntry moe = entry(StageKind::Ffn, "moe",
                         "mixture of SwiGLU experts (Mixtral): router softmax, top n_expert_used experts with "
                         "weights renormalised; only the chosen experts' weights are read",
                         make_ffn_moe);
  moe.supports = [backend](const StageContext& ctx) { return ffn_moe_supported(ctx, backend); };
  r.add_stage(std::move(moe));
  r.add_stage(entry(StageKind::Head, "dense", "output logits (separate or tied embedding weights)", make_head_dense));
}

}  // namespace semline::stations
