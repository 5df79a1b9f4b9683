#include "register.h"

#include <semline/error.h>

#include "backend/cpu_backend.h"
#include "kernels/kernels.h"
#include "ops/ssm.h"
#include "ops/station_kernels.h"
#include "stations/factories.h"

namespace semline::cpu {
namespace {

BackendEntry backend_entry() {
  const ParamSpec threads = stations::int_spec("threads", 0, 0, 4096,
                                               "worker threads, the calling thread included; 0: one per hardware thread");
  ParamSpec isa = stations::string_spec("isa", "auto", "kernel instruction set: auto picks the best this CPU runs", {"auto"});
  for (Isa i : kAllIsas) isa.choices.push_back(isa_name(i));
  const ParamSpec prefetch = stations::string_spec(
      "prefetch", "auto",
      "how decode streams weights from memory: software (several streams, prefetched ahead), "
      "hardware (one sequential stream per thread); auto: hardware on AMD, software elsewhere",
      {"auto", prefetch_name(Prefetch::Software), prefetch_name(Prefetch::Hardware)});
  BackendEntry b;
  b.name = "cpu";
  b.description = "host memory and a worker pool; kernels for the best instruction set of this CPU";
  b.params = {threads, isa, prefetch};
  b.probe = [] { return std::vector<std::string>{}; };  // the scalar kernels run anywhere
  b.create = [](const Params& p, const LogFn& log) -> std::unique_ptr<Backend> {
    const int64_t threads = p.values.count("threads") ? p.get_int("threads") : 0;
    const std::string name = p.values.count("isa") ? p.get_string("isa") : "auto";
    Isa isa = best_isa();
    if (name != "auto") {
      auto chosen = isa_from_name(name);
      if (!chosen) {
        std::string valid = "auto";
        for (Isa i : kAllIsas) valid += std::string(", ") + isa_name(i);
        throw Error("cpu backend: unknown isa '" + name + "'; valid: " + valid);
      }
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
  const stations::KernelsOf kernels = [](const StageContext& ctx) -> stations::Kernels& {
    return cpu_backend_of(ctx).station_kernels();
  };
  stations::add_stations(r, "cpu", kernels);

  for (const char* variant : {"dense", "flash", "sliding_window", "block_sparse"})
    r.add_stage(stations::attention_entry(variant, "cpu", kernels));
  stations::add_ssm_stations(r, "cpu", kernels, [](const StageContext& ctx) -> stations::SsmKernels& {
    return cpu_backend_of(ctx).ssm_kernels();
  });
}

}  // namespace semline::cpu
