// What every cpu stage checks of its station before it is built.
#include <semline/error.h>

#include "stages/linear.h"
#include "stages/stages.h"

namespace semline::cpu {

const HParams& hparams_of(const StageContext& ctx) {
  if (!ctx.hp) throw Error(station_label(ctx) + ": no hyper-parameters were given to the stage");
  return *ctx.hp;
}

int64_t int_param(const StageContext& ctx, const std::string& name, int64_t fallback) {
  return ctx.params.values.count(name) ? ctx.params.get_int(name) : fallback;
}

std::vector<std::string> weights_supported(const StageContext& ctx) {
  std::vector<std::string> why;
  if (!ctx.model) return why;
  for (const auto& [role, name] : ctx.tensors) {
    const Tensor* t = ctx.model->weight(name);
    if (t && !weight_dtype_supported(t->dtype))
      why.push_back("tensor '" + name + "' (" + role + ") is " + dtype_name(t->dtype) +
                    "; cpu stages take F32, F16, BF16, Q8_0, Q4_0");
  }
  return why;
}

std::vector<std::string> missing_roles(const StageContext& ctx, std::initializer_list<const char*> roles,
                                       const char* needs) {
  std::vector<std::string> why;
  if (!ctx.model) return why;
  for (const char* role : roles)
    if (!ctx.has_weight(role))
      why.push_back(std::string("the model has no '") + role + "' weight for this station (" + needs + ")");
  return why;
}

}  // namespace semline::cpu
