#include "stations/stations.h"

#include <cmath>

#include <semline/error.h>

#include "stations/binding.h"

namespace semline::stations {

std::string station_label(const StageContext& ctx) {
  std::string s = "station '" + ctx.station + "'";
  if (ctx.layer >= 0) s += " (layer " + std::to_string(ctx.layer) + ")";
  return s;
}

const HParams& hparams_of(const StageContext& ctx) {
  if (!ctx.hp) throw Error(station_label(ctx) + ": no hyper-parameters were given to the stage");
  return *ctx.hp;
}

int64_t int_param(const StageContext& ctx, const std::string& name, int64_t fallback) {
  return ctx.params.values.count(name) ? ctx.params.get_int(name) : fallback;
}

bool is_bound(const StageContext& ctx, std::string_view role) {
  for (const auto& [r, name] : ctx.tensors)
    if (r == role) return true;
  return false;
}

std::string tensor_name(const StageContext& ctx, std::string_view role) {
  for (const auto& [r, name] : ctx.tensors)
    if (r == role) return name;
  return "?";
}

bool weight_dtype_supported(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0 || t == DType::Q4_0;
}

std::vector<std::string> weights_supported(const StageContext& ctx, std::string_view backend) {
  std::vector<std::string> why;
  if (!ctx.model) return why;
  for (const auto& [role, name] : ctx.tensors) {
    const Tensor* t = ctx.model->weight(name);
    if (t && !weight_dtype_supported(t->dtype))
      why.push_back("tensor '" + name + "' (" + role + ") is " + dtype_name(t->dtype) + "; " + std::string(backend) +
                    " stages take F32, F16, BF16, Q8_0, Q4_0");
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

std::vector<std::string> attention_supported(const StageContext& ctx, std::string_view backend) {
  std::vector<std::string> why = weights_supported(ctx, backend);
  if (!ctx.hp) return why;
  const HParams& hp = *ctx.hp;
  const int64_t kv = hp.n_head_kv > 0 ? hp.n_head_kv : hp.n_head;
  if (hp.n_head <= 0 || kv <= 0 || hp.n_head % kv != 0)
    why.push_back("n_head " + std::to_string(hp.n_head) + " is not a positive multiple of n_head_kv " +
                  std::to_string(kv));
  if (hp.rope_type != RopeType::None && hp.rope_type != RopeType::Normal && hp.rope_type != RopeType::NeoX)
    why.push_back("rope type " + std::to_string(static_cast<int>(hp.rope_type)) + " is neither none, normal nor neox");
  return why;
}

std::vector<std::string> ffn_dense_supported(const StageContext& ctx, std::string_view backend) {
  std::vector<std::string> why = weights_supported(ctx, backend);
  if (!ctx.hp) return why;
  // Experts on every layer (Mixtral), or on every period-th from an offset (Jamba).
  const int64_t period = static_cast<int64_t>(ctx.hp->extra_or("expert_layer_period", 1));
  const int64_t offset = static_cast<int64_t>(ctx.hp->extra_or("expert_layer_offset", 0));
  if (ctx.hp->n_expert > 0 && ctx.layer >= offset && (ctx.layer - offset) % period == 0) {
    why.push_back("the model has " + std::to_string(ctx.hp->n_expert) + " experts " +
                  (period == 1 ? std::string("per layer") : "on this layer") +
                  "; ffn/dense computes one feed-forward network (use ffn/moe)");
    return why;
  }
  // The templates bind the dense weights as optional (MoE models have none); a station that
  // binds a gate (or a fused gate_up) is SwiGLU or GeGLU, one without is the GELU MLP.
  const bool fused = is_bound(ctx, "gate_up"), gated = fused || is_bound(ctx, "gate");
  const char* needs = "ffn/dense needs up and down, and gate for SwiGLU";
  for (std::string& r : fused   ? missing_roles(ctx, {"down"}, needs)
                        : gated ? missing_roles(ctx, {"gate", "up", "down"}, needs)
                                : missing_roles(ctx, {"up", "down"}, needs))
    why.push_back(std::move(r));
  if (!gated && ctx.hp->ffn_act == Activation::Silu)
    why.push_back("the station has no gate and the model's activation is silu; ffn/dense runs SwiGLU (gate "
                  "bound) or a GELU MLP (no gate)");
  return why;
}

std::vector<std::string> ffn_moe_supported(const StageContext& ctx, std::string_view backend) {
  std::vector<std::string> why = weights_supported(ctx, backend);
  if (ctx.hp && (ctx.hp->n_expert < 1 || ctx.hp->n_expert_used < 1)) {
    why.push_back("the model has no experts (llama.expert_count / expert_used_count); ffn/moe routes between experts");
    return why;
  }
  for (std::string& r : missing_roles(ctx, {"router", "gate_exps", "up_exps", "down_exps"},
                                      "ffn/moe needs the router and the gate, up and down expert stacks"))
    why.push_back(std::move(r));
  return why;
}

AttentionShape attention_shape(const StageContext& ctx) {
  const HParams& hp = hparams_of(ctx);
  const std::string label = station_label(ctx);
  AttentionShape a;
  a.n_embd = hp.n_embd;
  a.n_head = hp.n_head;
  a.n_kv = hp.n_head_kv > 0 ? hp.n_head_kv : hp.n_head;
  a.head_dim = hp.head_dim > 0 ? hp.head_dim : (hp.n_head > 0 ? hp.n_embd / hp.n_head : 0);
  a.rope_type = hp.rope_type;
  a.rope_dim = a.rope_type == RopeType::None ? 0 : (hp.rope_dim > 0 ? hp.rope_dim : a.head_dim);
  if (a.n_head <= 0 || a.head_dim <= 0 || a.n_kv <= 0 || a.n_head % a.n_kv != 0)
    throw Error(label + ": n_head " + std::to_string(a.n_head) + " must be positive and a multiple of n_head_kv " +
                std::to_string(a.n_kv) + ", head_dim " + std::to_string(a.head_dim) + " positive");
  if (a.rope_dim > a.head_dim || a.rope_dim % 2 != 0)
    throw Error(label + ": rope_dim " + std::to_string(a.rope_dim) + " must be even and at most head_dim " +
                std::to_string(a.head_dim));
  if (a.rope_type != RopeType::None && a.rope_type != RopeType::Normal && a.rope_type != RopeType::NeoX)
    throw Error(label + ": rope type " + std::to_string(static_cast<int>(a.rope_type)) +
                " is neither none (-1), normal (0) nor neox (2)");
  const int64_t half = a.rope_dim / 2;
  std::vector<float> divisor(static_cast<size_t>(half), 1.0f);
  if (is_bound(ctx, "rope_freqs")) divisor = weight_vector(ctx, "rope_freqs", half, "(rope_dim / 2)");
  for (int64_t i = 0; i < half; ++i) {
    if (!(divisor[i] > 0) || !std::isfinite(divisor[i]))
      throw Error(label + ": rope_freqs[" + std::to_string(i) + "] = " + std::to_string(divisor[i]) +
                  " must be a positive number (it divides a rotation frequency)");
    a.inv_freq.push_back(hp.rope_freq_scale * std::pow(hp.rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(a.rope_dim)) /
                         divisor[i]);
  }
  return a;
}

std::string wrong_backend(const StageContext& ctx, const char* name) {
  return "station '" + ctx.station + "': the " + name + " stages need the " + name + " backend, not '" +
         (ctx.backend ? ctx.backend->info().name : std::string("none")) + "'";
}

StageEntry stage_entry(StageKind kind, std::string variant, std::string backend, std::string description,
                       int rank, std::function<std::unique_ptr<Stage>(const StageContext&)> make) {
  StageEntry e;
  e.kind = kind;
  e.variant = std::move(variant);
  e.description = std::move(description);
  e.caps.weight_dtypes = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};
  e.caps.exact = true;
  e.rank = rank;
  e.supports = [backend](const StageContext& ctx) { return weights_supported(ctx, backend); };
  e.backend = std::move(backend);
  e.make_stage = std::move(make);
  return e;
}

ParamSpec int_spec(std::string name, int64_t def, double min, double max, std::string doc) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::Int;
  p.default_value = def;
  p.doc = std::move(doc);
  p.min = min;
  p.max = max;
  return p;
}

ParamSpec string_spec(std::string name, std::string def, std::string doc, std::vector<std::string> choices) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::String;
  p.default_value = std::move(def);
  p.doc = std::move(doc);
  p.choices = std::move(choices);
  return p;
}

ParamSpec bool_spec(std::string name, bool def, std::string doc) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::Bool;
  p.default_value = def;
  p.doc = std::move(doc);
  return p;
}

}  // namespace semline::stations
