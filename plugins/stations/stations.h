// What the stage plugins of every backend share, whatever the backend computes with: how a
// station is named in messages, what it binds, and the checks of a station that depend only on
// the model (hyper-parameters, bound roles, weight dtypes). A backend's `supports` adds its own
// limits to these; its registry entries come from stage_entry. Compiled once into the static
// library semline_stations, linked into each backend plugin.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <semline/error.h>
#include <semline/registry.h>
#include <semline/stage.h>

#include "stations/attention.h"

namespace semline::stations {

// "station 'attn' (layer 3)" — how errors and logs name the stage.
std::string station_label(const StageContext& ctx);
// The hyper-parameters of a station; throws naming it when the host gave none.
const HParams& hparams_of(const StageContext& ctx);
// An integer parameter, or `fallback` when the context carries none (supports() may be asked
// before the graph has filled in the defaults).
int64_t int_param(const StageContext& ctx, const std::string& name, int64_t fallback);

// Whether the station binds the role at all (a bound tensor missing from the file is an error
// for the stage to report, not another kind of station).
bool is_bound(const StageContext& ctx, std::string_view role);
// The file's name of the tensor bound to a role ("?" when unbound).
std::string tensor_name(const StageContext& ctx, std::string_view role);

// The weight dtypes the stages of every backend read: F32, F16, BF16, Q8_0, Q4_0.
bool weight_dtype_supported(DType t);
// One reason per bound weight whose dtype is not one of those (`backend` names who refuses).
std::vector<std::string> weights_supported(const StageContext& ctx, std::string_view backend);
// One reason per role of `roles` the model has no weight for (the templates bind them as
// optional); `needs` says what the variant needs them for.
std::vector<std::string> missing_roles(const StageContext& ctx, std::initializer_list<const char*> roles,
                                       const char* needs);

// The model-side checks of the llama-family stations, each starting with weights_supported:
// attention: n_head a positive multiple of n_head_kv, a rope type the stages rotate by;
std::vector<std::string> attention_supported(const StageContext& ctx, std::string_view backend);
// ffn/dense: no experts; gate, up and down for SwiGLU or up and down for the GELU MLP;
std::vector<std::string> ffn_dense_supported(const StageContext& ctx, std::string_view backend);
// ffn/moe: experts, a router and the three expert stacks.
std::vector<std::string> ffn_moe_supported(const StageContext& ctx, std::string_view backend);

// The head layout of an attention station, from its hyper-parameters, checked (throws naming the
// station): heads positive, n_head a multiple of n_kv, head_dim positive, rope_dim even and at
// most head_dim (0 without rope), a rope type the stages rotate by.
AttentionShape attention_shape(const StageContext& ctx);

// The context's backend as the backend plugin's own class B (`name`: the backend's name), or an
// error naming the station and the backend it got.
std::string wrong_backend(const StageContext& ctx, const char* name);
template <class B>
B& backend_as(const StageContext& ctx, const char* name) {
  if (auto* b = dynamic_cast<B*>(ctx.backend)) return *b;
  throw Error(wrong_backend(ctx, name));
}

// A registry entry of `backend` taking every weight dtype above, exact unless changed, whose
// supports() is weights_supported unless changed.
StageEntry stage_entry(StageKind kind, std::string variant, std::string backend, std::string description,
                       int rank, std::function<std::unique_ptr<Stage>(const StageContext&)> make);
// Parameter schemas: an integer in [min, max], a string (one of `choices` when given), a bool.
ParamSpec int_spec(std::string name, int64_t def, double min, double max, std::string doc);
ParamSpec string_spec(std::string name, std::string def, std::string doc, std::vector<std::string> choices = {});
ParamSpec bool_spec(std::string name, bool def, std::string doc);

}  // namespace semline::stations
