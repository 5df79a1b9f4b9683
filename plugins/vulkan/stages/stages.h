// Factories of the vulkan stages (the llama and GPT-2 families, Mixtral's experts), and what each
// checks before it is chosen.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <semline/stage.h>

namespace semline::vk {

std::unique_ptr<Stage> make_attention_dense(const StageContext& ctx);
std::unique_ptr<Stage> make_attention_flash(const StageContext& ctx);  // param "block"
std::unique_ptr<Stage> make_ffn_moe(const StageContext& ctx);

// Reasons a stage of that kind cannot serve the station (empty: it can).
std::vector<std::string> attention_supports(const StageContext& ctx);
std::vector<std::string> ffn_moe_supports(const StageContext& ctx);

inline constexpr int64_t kMaxHeadDim = 256;  // MAXHD of attention.glsl
inline constexpr int64_t kMaxFlashTile = 1024;

}  // namespace semline::vk
