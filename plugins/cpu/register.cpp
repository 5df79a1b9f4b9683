#include "register.h"

#include <semline/error.h>

#include "backend/cpu_backend.h"
#include "kernels/kernels.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

const std::vector<DType> kWeightDtypes = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

StageEntry entry(StageKind kind, std::string variant, std::string description, int rank,
                 std::function<std::unique_ptr<Stage>(const StageContext&)> make) {
  StageEntry e;
  e.kind = kind;
  e.variant = std::move(variant);
  e.backend = "cpu";
  e.description = std::move(description);
  e.caps.weight_dtypes = kWeightDtypes;
  e.caps.exact = true;
  e.rank = rank;
  e.supports = weights_supported;
  e.make_stage = std::move(make);
  return e;
}

BackendEntry backend_entry() {
  BackendEntry b;
  b.name = "cpu";
  b.description = "host memory and a worker pool; kernels for the best instruction set of this CPU";
  ParamSpec threads;
  threads.name = "threads";
  threads.type = ParamType::Int;
  threads.default_value = int64_t{0};
  threads.doc = "worker threads, the calling thread included; 0: one per hardware thread";
  threads.min = 0;
  threads.max = 4096;
  ParamSpec isa;
  isa.name = "isa";
  isa.type = ParamType::String;
  isa.default_value = std::string("auto");
  isa.doc = "kernel instruction set: auto picks the best this CPU runs";
  isa.choices = {"auto"};
  for (Isa i : kAllIsas) isa.choices.push_back(isa_name(i));
  b.params = {threads, isa};
  b.probe = [] { return std::vector<std::string>{}; };  // the scalar kernels run anywhere
  b.create = [](const Params& p, const LogFn& log) -> std::unique_ptr<Backend> {
    const int64_t threads = p.values.count("threads") ? p.get_int("threads") : 0;
    const std::string name = p.values.count("isa") ? p.get_string("isa") : "auto";
    Isa isa = best_isa();
    if (name != "auto") {
      auto chosen = isa_from_name(name);
      if (!chosen) throw Error("cpu backend: unknown isa '" + name + "'; valid: auto, scalar, avx2, avx512");
      if (!isa_supported(*chosen))
        throw Error("cpu backend: isa '" + name + "' is not supported by this CPU; best available: " +
                    isa_name(best_isa()));
      isa = *chosen;
    }
    return std::make_unique<CpuBackend>(static_cast<int>(threads), isa, log);
  };
  return b;
}

}  // namespace

void register_cpu(Registry& r) {
  r.add_backend(backend_entry());
  r.add_stage(entry(StageKind::Embedding, "lookup",
                    "token embedding rows (plus learned position rows when the model has them), dequantised to float",
                    10, make_embedding_lookup));
  StageEntry rms = entry(StageKind::Norm, "rms", "RMSNorm with a learned scale", 10, make_norm_rms);
  rms.supports = norm_rms_supports;
  r.add_stage(std::move(rms));
  r.add_stage(entry(StageKind::Norm, "layer", "LayerNorm with a learned scale and shift", 10, make_norm_layer));

  StageEntry dense = entry(StageKind::Attention, "dense",
                           "the reference: causal GQA attention (RoPE or none, q/k/v or fused qkv, optional biases), "
                           "full score row per query",
                           10, make_attention_dense);
  dense.supports = attention_supports;
  r.add_stage(std::move(dense));

  StageEntry flash = entry(StageKind::Attention, "flash",
                           "causal GQA attention (RoPE or none, q/k/v or fused qkv, optional biases), key tiles "
                           "with an online softmax",
                           20,
                           make_attention_flash);
  ParamSpec block;
  block.name = "block";
  block.type = ParamType::Int;
  block.default_value = int64_t{64};
  block.doc = "keys per tile";
  block.min = 1;
  block.max = 4096;
  flash.params = {block};
  flash.supports = attention_supports;
  r.add_stage(std::move(flash));

  StageEntry ffn = entry(StageKind::Ffn, "dense",
                         "feed-forward: down(silu(gate x) * up x) (SwiGLU), or down(gelu(up x)) without a gate; "
                         "optional biases",
                         10, make_ffn_dense);
  ffn.supports = ffn_supports;
  r.add_stage(std::move(ffn));
  r.add_stage(entry(StageKind::Head, "dense", "output logits (separate or tied embedding weights)", 10,
                    make_head_dense));
}

}  // namespace semline::cpu
