// semline SDK — speculative decoding proposers: who drafts the tokens the model verifies.
//
// A proposer guesses the next tokens of sequences; the engine computes the model's logits at
// every guess in one step and keeps the guesses while sampling agrees with them (see
// docs/speculative.md). Drafts should be deterministic for the sequence they follow (the same
// tokens give the same draft): for such drafts the engine's check is speculative sampling's
// accept/reject rule, and the output is the model's, token for token for the same seed. A
// proposer only ever changes speed, never the text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "semline/params.h"
#include "semline/stage.h"

namespace semline {

// One sequence that decodes this step and may carry drafts.
struct DraftRequest {
  uint64_t seq = 0;                 // names the sequence until Proposer::release(seq)
  std::span<const int32_t> tokens;  // the sequence so far (prompt, then generated tokens)
  int32_t k = 0;                    // draft at most k tokens
  std::vector<int32_t> draft;       // the answer: token ids of the vocabulary, at most k of them
};

// One proposer serves an engine, on the engine's thread: it gets every sequence that decodes in a
// step at once, so it can batch its own work. What it throws costs that step its drafts, nothing
// more; tokens past k or outside the vocabulary are cut off.
class Proposer {
 public:
  virtual ~Proposer() = default;
  virtual void propose(std::span<DraftRequest> requests) = 0;
  // The sequence has ended: whatever the proposer kept for it can go.
  virtual void release(uint64_t seq) = 0;
};

// What a proposer factory is given.
struct ProposerContext {
  Params params;                       // the [speculative] keys the entry declares, checked
  const Tokenizer* tokenizer = nullptr;  // the model's, alive as long as the proposer
  int64_t n_vocab = 0;                 // logits per token; drafts are ids below it
  int32_t k = 0;                       // speculative.k: the most drafts a request asks for
  int32_t max_seqs = 0;                // sequences the engine runs at once
  LogFn log;
};

}  // namespace semline
