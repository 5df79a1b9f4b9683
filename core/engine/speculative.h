// Speculative decoding: a proposer drafts the next tokens of a sequence cheaply, and the model
// checks all of them in one step (a decode that reads the weights once for several tokens).
//
// The engine verifies by sampling: at each drafted position it samples the model's row with the
// request's own chain, exactly as plain decoding would, and keeps the draft while the sampled
// token equals it; the first token that differs (or the one after the last draft) is kept too.
// A proposer that drafts deterministically has a one-hot draft distribution, for which this is
// speculative sampling's accept/reject rule: the output follows the model's distribution and, for
// the same seed, is the plain decoding's output token for token, greedy or sampled.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <semline/proposer.h>

#include "core/config/config.h"

namespace semline {

class Pipeline;

struct SpeculativeOptions {
  std::string proposer = "none";  // "none" | "ngram" | "draft" | a plugin's (the registry's proposers)
  SourcePos proposer_pos;
  int32_t k = 4;                  // draft tokens per step at most
  bool adaptive = true;           // k follows the acceptance, between 1 and k
  int32_t ngram_min = 1;          // ngram: the shortest and longest suffix looked up
  int32_t ngram_max = 3;
  Pipeline* draft = nullptr;      // draft: the draft model's line (see draft_proposer.h)
  std::map<std::string, ConfigValue> params;  // a plugin proposer's keys of [speculative]
};

// Prompt lookup: the longest suffix of the sequence (ngram_max tokens down to ngram_min) that
// occurred before, most recent occurrence first, proposes the tokens that followed it. It pays
// where the output repeats its input: code edits, lists, quotes, extraction.
class NgramProposer : public Proposer {
 public:
  NgramProposer(int32_t ngram_min, int32_t ngram_max);
  void propose(std::span<DraftRequest> requests) override;
  void release(uint64_t) override {}
  // One sequence: appends at most k tokens to out.
  void propose(std::span<const int32_t> tokens, int32_t k, std::vector<int32_t>& out) const;

 private:
  int32_t min_, max_;
};

// The proposer the options name, the engine's own or a plugin's from the line's registry; nullptr
// for "none". Throws one semline::Error naming the config key for an unknown name, a key the
// proposer does not take, or "draft" without a draft line.
std::unique_ptr<Proposer> make_proposer(const SpeculativeOptions& opt, const Pipeline& line, int32_t max_seqs);
const std::vector<std::string>& own_proposer_names();  // "none", "ngram", "draft"

// Draft length that follows the acceptance: it grows by one after a step that accepted every
// draft and shrinks by one after a step that accepted none, between 1 and the ceiling, so that
// a sequence the proposer cannot predict costs little more than plain decoding.
class DraftLength {
 public:
  DraftLength(int32_t k, bool adaptive) : max_(k), k_(k), adaptive_(adaptive) {}
  int32_t next() const { return k_; }
  void update(int32_t drafted, int32_t accepted);

 private:
  int32_t max_, k_;
  bool adaptive_;
};

}  // namespace semline
