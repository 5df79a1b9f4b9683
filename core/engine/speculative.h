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
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace semline {

struct SpeculativeOptions {
  std::string proposer = "none";  // "none" | "ngram"
  int32_t k = 4;                  // draft tokens per step at most
  bool adaptive = true;           // k follows the acceptance, between 1 and k
  int32_t ngram_min = 1;          // ngram: the shortest and longest suffix looked up
  int32_t ngram_max = 3;
};

// Drafts continuations of one sequence; one proposer per sequence (it may keep state).
class Proposer {
 public:
  virtual ~Proposer() = default;
  // Appends at most k draft tokens that may follow `tokens` (the sequence so far) to `out`.
  virtual void propose(std::span<const int32_t> tokens, int32_t k, std::vector<int32_t>& out) = 0;
};

// Prompt lookup: the longest suffix of the sequence (ngram_max tokens down to ngram_min) that
// occurred before, most recent occurrence first, proposes the tokens that followed it. It pays
// where the output repeats its input: code edits, lists, quotes, extraction.
class NgramProposer : public Proposer {
 public:
  NgramProposer(int32_t ngram_min, int32_t ngram_max);
  void propose(std::span<const int32_t> tokens, int32_t k, std::vector<int32_t>& out) override;

 private:
  int32_t min_, max_;
};

// The proposer the options name; nullptr for "none". Throws semline::Error on an unknown name.
std::unique_ptr<Proposer> make_proposer(const SpeculativeOptions& opt);
const std::vector<std::string>& proposer_names();  // "none", "ngram"

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
