// Factories of the cpu stages (the llama and GPT-2 families), and what each checks before it is chosen.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <semline/stage.h>

namespace semline::cpu {

std::unique_ptr<Stage> make_embedding_lookup(const StageContext& ctx);
std::unique_ptr<Stage> make_norm_rms(const StageContext& ctx);
std::unique_ptr<Stage> make_norm_layer(const StageContext& ctx);
std::unique_ptr<Stage> make_attention_dense(const StageContext& ctx);
std::unique_ptr<Stage> make_attention_flash(const StageContext& ctx);  // param "block"
std::unique_ptr<Stage> make_ffn_dense(const StageContext& ctx);
std::unique_ptr<Stage> make_head_dense(const StageContext& ctx);

// Reasons a stage of that kind cannot serve the station (empty: it can).
std::vector<std::string> norm_rms_supports(const StageContext& ctx);
std::vector<std::string> attention_supports(const StageContext& ctx);
std::vector<std::string> ffn_supports(const StageContext& ctx);
// Weights of these roles (when bound) must have a dtype the cpu stages take.
std::vector<std::string> weights_supported(const StageContext& ctx);

// The hyper-parameters of a station; throws naming it when the host gave none.
const HParams& hparams_of(const StageContext& ctx);

}  // namespace semline::cpu
