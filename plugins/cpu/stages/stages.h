// Factories of the cpu stages (the llama and GPT-2 families), and what each checks before it is chosen.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include <semline/stage.h>

#include "stations/stations.h"

namespace semline::cpu {

std::unique_ptr<Stage> make_attention_dense(const StageContext& ctx);
std::unique_ptr<Stage> make_attention_flash(const StageContext& ctx);  // param "block"
std::unique_ptr<Stage> make_attention_sliding(const StageContext& ctx);  // params "window", "block"
std::unique_ptr<Stage> make_attention_sparse(const StageContext& ctx);   // "block", "local", "global", "stride"
std::unique_ptr<Stage> make_ffn_moe(const StageContext& ctx);

// Reasons a stage of that kind cannot serve the station (empty: it can).
// What every attention variant needs (weights, heads, rope type).
std::vector<std::string> attention_basics_supported(const StageContext& ctx);
// Attention over the whole context (dense, flash) or a pattern of its own (block_sparse): refuses
// models trained with a sliding window.
std::vector<std::string> attention_supports(const StageContext& ctx);
// sliding_window: needs a window, from the model or from its `window` parameter.
std::vector<std::string> sliding_window_supports(const StageContext& ctx);
std::vector<std::string> ffn_moe_supports(const StageContext& ctx);
// Bound weights must have a dtype the cpu stages take (stations/stations.h).
inline std::vector<std::string> weights_supported(const StageContext& ctx) {
  return stations::weights_supported(ctx, "cpu");
}
using stations::hparams_of;
using stations::int_param;
using stations::missing_roles;

// Parameter defaults, shared by the registry entries (what `semline plugins` shows) and the
// factories.
inline constexpr int64_t kDefaultBlock = 64;  // flash, sliding_window: keys per tile; block_sparse: block size
inline constexpr int64_t kDefaultLocal = 4, kDefaultGlobal = 1, kDefaultStride = 8;  // block_sparse

}  // namespace semline::cpu
