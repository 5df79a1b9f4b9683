// One prompt, one choice, start to end: the engine with a single request, and the one-sequence
// prefill the benches and tests use to drive the line directly.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/engine/engine.h"

namespace semline {

struct GenerateOptions {
  int32_t max_tokens = 128;
  std::vector<std::string> stop;  // stop strings (not printed)
  bool stop_at_eos = true;
  SamplingParams sampling;        // unset: the config's chain as it is
  SpeculativeOptions speculative; // [speculative]
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids
  std::string text;             // generated text (stop string excluded)
  std::string stop_reason;      // "eos", "stop string", "length"
  int32_t n_prompt = 0;
  double prompt_seconds = 0;    // prefill
  double ttft_seconds = 0;      // start to first sampled token
  double gen_seconds = 0;       // first sampled token to the end
  int32_t draft_steps = 0;      // speculative decoding: steps that verified drafts,
  int32_t draft_tokens = 0;     // the tokens drafted, and those the model accepted
  int32_t accepted_tokens = 0;
  double prompt_tps() const { return prompt_seconds > 0 ? n_prompt / prompt_seconds : 0; }
  double gen_tps() const {
    return gen_seconds > 0 && tokens.size() > 1 ? (tokens.size() - 1) / gen_seconds : 0;
  }
};

// Generates through an engine of its own over the line; on_text receives printable text as it is
// produced. Throws what the request or the line reports.
GenerateResult generate(Pipeline& p, const std::vector<int32_t>& prompt, const GenerateOptions& opt,
                        const std::function<void(std::string_view)>& on_text = {});

// One step of sequence `seq` alone: `tokens` (at most max_batch_tokens) after what its cache holds,
// which reserves and then advances over them. Returns the logits of `output_rows` (indices into
// tokens), one row of n_vocab each, valid until the next forward.
std::span<const float> step_sequence(Pipeline& p, int32_t seq, std::span<const int32_t> tokens,
                                     std::span<const int32_t> output_rows);

// Feeds tokens of sequence `seq` through the line in chunks; returns the logits of the last token
// (valid until the next forward).
std::span<const float> prefill(Pipeline& p, int32_t seq, std::span<const int32_t> tokens);

}  // namespace semline
