// The generation loop: prefill the prompt in chunks, then sample and decode token by token until
// eos, a stop string or the length limit. One sequence; the batch API underneath takes many.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/engine/pipeline.h"

namespace semline {

struct GenerateOptions {
  int32_t max_tokens = 128;
  std::vector<std::string> stop;  // stop strings (not printed)
  bool stop_at_eos = true;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids
  std::string text;             // generated text (stop string excluded)
  std::string stop_reason;      // "eos", "stop string", "length"
  int32_t n_prompt = 0;
  double prompt_seconds = 0;    // prefill
  double ttft_seconds = 0;      // start to first sampled token
  double gen_seconds = 0;       // first sampled token to the end
  double prompt_tps() const { return prompt_seconds > 0 ? n_prompt / prompt_seconds : 0; }
  double gen_tps() const {
    return gen_seconds > 0 && tokens.size() > 1 ? (tokens.size() - 1) / gen_seconds : 0;
  }
};

// on_text receives printable text as it is produced.
GenerateResult generate(Pipeline& p, const std::vector<int32_t>& prompt, const GenerateOptions& opt,
                        const std::function<void(std::string_view)>& on_text = {});

// Runs the sampler chain over one row of logits; history is the sequence so far.
int32_t sample(std::vector<std::unique_ptr<Sampler>>& chain, std::span<const float> logits,
               std::span<const int32_t> history, Candidates& scratch);

// Feeds tokens of sequence `seq` through the line in chunks; returns the logits of the last token
// (valid until the next forward).
std::span<const float> prefill(Pipeline& p, int32_t seq, std::span<const int32_t> tokens);

}  // namespace semline
