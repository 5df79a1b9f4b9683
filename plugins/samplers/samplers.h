// The members of a sampler chain. Each works in place on the Candidates of one step; filters
// rescale, reorder or drop candidates (and clear any earlier selection), and a chain ends with a
// selecting member, greedy or draw. A NaN logit counts as -inf everywhere, so a broken row of
// logits never turns into a NaN probability.
#pragma once

#include <cstdint>
#include <random>

#include <boost/regex.hpp>
#include <span>
#include <string>
#include <vector>

#include "semline/stage.h"

namespace semline::samplers {

// --- Shared by the members (candidates.cpp)

// Descending logit, NaN last, ties broken by the lower id: a total order, so every platform
// sorts the same way.
bool ranks_before(const Candidate& a, const Candidate& b);
void sort_candidates(Candidates& c);
// Sorts and sets p to the softmax of the logits over the set (computed in double). A +inf logit
// takes all the probability (shared among equals); a set with no finite logit gets equal shares.
void softmax(Candidates& c);
// Index of the highest logit (the first of equals in item order); -1 for an empty set.
int32_t best_index(const Candidates& c);
// A parameter's value as a user wrote it in a config ("1.5", "nan", "-2"), for error messages.
std::string shown(double v);

// --- Filters (filters.cpp)

class Greedy final : public Sampler {
 public:
  void apply(Candidates& c, std::span<const int32_t> history) override;
};

// Divides the logits by t; t == 0 keeps only the best candidate.
class Temperature final : public Sampler {
 public:
  explicit Temperature(double t);
  void apply(Candidates& c, std::span<const int32_t> history) override;

 private:
  double t_;
};

// Keeps the k highest logits; k == 0 keeps all.
class TopK final : public Sampler {
 public:
  explicit TopK(int64_t k);
  void apply(Candidates& c, std::span<const int32_t> history) override;

 private:
  int64_t k_;
};

// Keeps the smallest prefix (by probability) whose probabilities add up to at least p, and at
// least one candidate. The kept candidates carry their probabilities from before the cut.
class TopP final : public Sampler {
 public:
  explicit TopP(double p);
  void apply(Candidates& c, std::span<const int32_t> history) override;

 private:
  double p_;
};

// Keeps candidates whose probability is at least p times the highest probability.
class MinP final : public Sampler {
 public:
  explicit MinP(double p);
  void apply(Candidates& c, std::span<const int32_t> history) override;

 private:
  double p_;
};

// --- Penalties on tokens seen in the last `last_n` tokens of history (-1: all of it; 0: off)
// (penalties.cpp)

// The tokens of the window and how often each occurs; a member so no step allocates once warm.
class WindowCounts {
 public:
  void count(std::span<const int32_t> history, int64_t last_n);
  int64_t of(int32_t id) const;  // occurrences of id in the window

 private:
  std::vector<std::pair<int32_t, int64_t>> counts_;  // ascending id
  std::vector<int32_t> scratch_;
};

// llama.cpp's rule: a seen token's logit is divided by the penalty when positive, else multiplied.
class RepetitionPenalty final : public Sampler {
 public:
  RepetitionPenalty(double penalty, int64_t last_n);
  void apply(Candidates& c, std::span<const int32_t> history) override;

 private:
  double penalty_;
  int64_t last_n_;
  WindowCounts window_;
};

// logit -= count * frequency + (count > 0) * presence, as in the OpenAI API.
class CountPenalty final : public Sampler {
 public:
  CountPenalty(double frequency, double presence, int64_t last_n);
  void apply(Candidates& c, std::span<const int32_t> history) override;

 private:
  double frequency_, presence_;
  int64_t last_n_;
  WindowCounts window_;
};

// --- Biases (filters.cpp)

// Adds a bias to the logits of given token ids (OpenAI's logit_bias): -100 all but bans a token,
// +100 all but forces it.
class LogitBias final : public Sampler {
 public:
  LogitBias(std::vector<int64_t> ids, std::vector<double> biases, int32_t n_vocab);
  void apply(Candidates& c, std::span<const int32_t> history) override;

 private:
  std::vector<float> bias_;  // by id; 0 where none
};

// --- Content (content_filter.cpp)

// What a content filter keeps out of the text.
struct BanList {
  std::vector<std::string> strings;  // literal byte strings
  std::vector<std::string> regexes;  // regular expressions (Perl syntax, as Boost.Regex reads it)
  std::vector<int64_t> ids;          // token ids
  bool ignore_case = false;          // ASCII letters, strings and regular expressions alike
  int64_t window = 64;               // bytes of text before a candidate a regular expression sees
};

// Drops every candidate whose text would complete a banned string or a match of a banned regular
// expression, or whose id is banned. A candidate is judged on the text before it (the last bytes
// of the history, the prompt included) followed by its own bytes, so a word split across tokens
// is caught at the token that completes it; only matches that end inside the candidate's bytes
// count, so a banned word already in the prompt bans nothing. The tokenizer gives each token's
// bytes; it may be null when nothing but ids is banned.
//
// Regular expressions cost one short search per candidate and expression: before a step, the
// filter finds the first position of the text before the candidates where a match could still be
// under way (a partial match); a candidate is then searched from there, or, when no match can
// be under way, from its own first byte with one byte of context (for \b).
class ContentFilter final : public Sampler {
 public:
  ContentFilter(const Tokenizer* tokenizer, BanList bans);
  void apply(Candidates& c, std::span<const int32_t> history) override;

 private:
  bool banned_string(const std::string& token) const;
  bool banned_match(const boost::regex& re, size_t from, const std::string& token);
  std::string text_before(std::span<const int32_t> history, size_t bytes) const;

  const Tokenizer* tok_;
  BanList bans_;
  std::vector<boost::regex> regexes_;
  std::vector<bool> banned_id_;       // by id
  std::vector<std::string> bytes_;    // each token's bytes (lower-cased when ignoring case)
  size_t longest_ = 0;                // of the banned strings
  std::string before_;                // scratch: the text before this step's candidates
  std::vector<size_t> open_from_;     // scratch: per expression, where a match may be under way
  std::string text_;                  // scratch: context + candidate
};

// --- Selection (draw.cpp)

// A uniform double in [0, 1) from the top 53 bits of one engine output. std::uniform_real_
// distribution is left to each standard library; this is the same everywhere.
double uniform01(std::mt19937_64& rng);

// Softmax over the remaining candidates, then one seeded draw: the first candidate whose running
// total of probabilities exceeds u * total.
class Draw final : public Sampler {
 public:
  explicit Draw(uint64_t seed);
  void apply(Candidates& c, std::span<const int32_t> history) override;
  void reset() override;

 private:
  uint64_t seed_;
  std::mt19937_64 rng_;
};

}  // namespace semline::samplers
