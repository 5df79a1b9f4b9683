// Sampling per request: what one request asks of the sampler chain, and the chains made for it
// from the registry's samplers. The config's chain is the default; a request's parameters always
// apply, as llama.cpp and OpenAI-style servers read them:
//   - greedy, or temperature 0, is greedy (penalties the request sets still apply before it);
//   - other parameters sample, with the config's chain when it has every member they set, else
//     with the usual sampling chain (llama.cpp's order); members of the config's chain that
//     neither chain has (a content filter, say) stay, in front;
//   - a logit bias puts a logit_bias member first.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/graph/graph.h"

namespace semline {

struct SamplingParams {
  bool greedy = false;
  std::optional<double> temperature, top_p, min_p, repeat_penalty, frequency_penalty, presence_penalty;
  std::optional<int64_t> top_k, repeat_last_n, seed;
  std::vector<std::pair<int32_t, double>> logit_bias;  // token id -> added to its logit

  bool empty() const;  // nothing set: the config's chain as it is
};

// Runs a chain over one row of logits (history: the sequence so far); returns the chosen token.
// Throws when the chain selects none (it must end with a selecting member: greedy, draw).
int32_t sample_chain(std::vector<std::unique_ptr<Sampler>>& chain, std::span<const float> logits,
                     std::span<const int32_t> history, Candidates& scratch);

// The usual sampling chain, in llama.cpp's order.
const std::vector<std::string>& sampling_chain();

class SamplerFactory {
 public:
  // The graph's sampler chain is the default; samplers come from the registry; the tokenizer is
  // handed to every sampler (it must outlive the samplers).
  SamplerFactory(const PipelineGraph& graph, const StageRegistry& registry, const Tokenizer& tokenizer);

  // The members a request's chain has, in order.
  std::vector<std::string> chain_for(const SamplingParams& p) const;
  // A fresh chain for choice `index` of a request (choice i draws with seed + i). Throws
  // semline::Error naming the parameter when a value is out of range; the sampler's own check
  // (a plugin's) is named with its key.
  std::vector<std::unique_ptr<Sampler>> make(const SamplingParams& p, int32_t index = 0) const;

 private:
  const PipelineGraph& graph_;
  const StageRegistry& registry_;
  const Tokenizer& tokenizer_;
  std::vector<std::string> configured_;  // the config's chain
};

}  // namespace semline
