// Factories of the vulkan stages not yet written once (stations/), and what each checks before it
// is chosen.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <semline/stage.h>

namespace semline::vk {

std::unique_ptr<Stage> make_ffn_moe(const StageContext& ctx);
// Reasons ffn/moe cannot serve the station (empty: it can).
std::vector<std::string> ffn_moe_supports(const StageContext& ctx);

}  // namespace semline::vk
