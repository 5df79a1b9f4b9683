#include "register.h"

#include <semline/error.h>

#include "backend/cpu_backend.h"
#include "kernels/kernels.h"
#include "stages/stages.h"
#include "stages/station_kernels.h"
#include "stations/factories.h"

namespace semline::cpu {
namespace {

using stations::int_spec;

StageEntry entry(StageKind kind, std::string variant, std::string description, int rank,
                 std::function<std::unique_ptr<Stage>(const StageContext&)> make) {
  return stations::stage_entry(kind, std::move(variant), "cpu", std::move(description), rank, std::move(make));
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
  ParamSpec prefetch;
  prefetch.name = "prefetch";
  prefetch.type = ParamType::String;
  prefetch.default_value = std::string("auto");
  prefetch.doc = "how decode streams weights from memory: software (several streams, prefetched ahead), "
                 "hardware (one sequential stream per thread); auto: hardware on AMD, software elsewhere";
  prefetch.choices = {"auto", prefetch_name(Prefetch::Software), prefetch_name(Prefetch::Hardware)};
  b.params = {threads, isa, prefetch};
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
    const std::string how = p.values.count("prefetch") ? p.get_string("prefetch") : "auto";
    Prefetch prefetch = default_prefetch();
    if (how != "auto") {
      auto chosen = prefetch_from_name(how);
      if (!chosen) throw Error("cpu backend: unknown prefetch '" + how + "'; valid: auto, software, hardware");
      prefetch = *chosen;
    }
    return std::make_unique<CpuBackend>(static_cast<int>(threads), isa, prefetch, log);
  };
  return b;
}

}  // namespace

void register_cpu(Registry& r) {
  r.add_backend(backend_entry());
  stations::add_stations(r, "cpu", [](const StageContext& ctx) -> stations::Kernels& {
    return cpu_backend_of(ctx).station_kernels();
  });

  StageEntry dense = entry(StageKind::Attention, "dense",
                           "the reference: causal GQA attention (RoPE or none, q/k/v or fused qkv, optional biases), "
                           "full score row per query",
                           10, make_attention_dense);
  dense.supports = attention_supports;
  r.add_stage(std::move(dense));

  const ParamSpec tile = int_spec("block", kDefaultBlock, 1, 4096, "keys per tile");
  StageEntry flash = entry(StageKind::Attention, "flash",
                           "causal GQA attention (RoPE or none, q/k/v or fused qkv, optional biases), key tiles "
                           "with an online softmax",
                           20,
                           make_attention_flash);
  flash.params = {tile};
  flash.supports = attention_supports;
  r.add_stage(std::move(flash));

  // Ranked between dense and flash: it never wins where flash can serve, and wins by rank on the
  // models flash refuses, those trained with a sliding window.
  StageEntry sliding = entry(StageKind::Attention, "sliding_window",
                             "each query attends to the last `window` positions, its own included (Mistral); "
                             "exact with the model's window, else an approximation of dense",
                             15, make_attention_sliding);
  sliding.params = {int_spec("window", 0, 0, 2147483647.0, "positions a query attends to, its own included; 0: the model's"),
                    tile};
  sliding.supports = sliding_window_supports;
  r.add_stage(std::move(sliding));

  // An approximation: ranked below every exact variant, so it runs only where a config names it.
  StageEntry sparse = entry(StageKind::Attention, "block_sparse",
                            "BigBird-like block pattern: local band, first blocks and every stride-th block, "
                            "an approximation of dense",
                            5, make_attention_sparse);
  sparse.params = {int_spec("block", kDefaultBlock, 1, 4096, "positions per key block (and keys per tile)"),
                   int_spec("local", kDefaultLocal, 1, 1 << 20, "blocks up to and including the query's own"),
                   int_spec("global", kDefaultGlobal, 0, 1 << 20, "first blocks every query attends to"),
                   int_spec("stride", kDefaultStride, 0, 1 << 20,
                            "every block j with j % stride == stride - 1 is attended to; 0: none")};
  sparse.caps.exact = false;
  sparse.supports = attention_supports;
  r.add_stage(std::move(sparse));

  StageEntry moe = entry(StageKind::Ffn, "moe",
                         "mixture of SwiGLU experts (Mixtral): router softmax, top n_expert_used experts with "
                         "weights renormalised; tokens grouped by expert",
                         10, make_ffn_moe);
  moe.supports = ffn_moe_supports;
  r.add_stage(std::move(moe));
}

}  // namespace semline::cpu
