// Samplers for the host tests that select one candidate by a fixed rule, so a test can predict
// exactly which one a registered entry picks.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <semline/registry.h>

namespace test_plugins {

// Better(a, b): candidate a beats candidate b.
template <class Better>
class SelectSampler final : public semline::Sampler {
 public:
  void apply(semline::Candidates& c, std::span<const int32_t>) override {
    if (c.items.empty()) throw semline::Error("no candidates to select from");
    int32_t best = 0;
    for (int32_t i = 1; i < static_cast<int32_t>(c.items.size()); ++i)
      if (Better{}(c.items[i], c.items[best])) best = i;
    c.selected = best;
  }
};

struct LowerId {
  bool operator()(const semline::Candidate& a, const semline::Candidate& b) const { return a.id < b.id; }
};
struct HigherLogit {
  bool operator()(const semline::Candidate& a, const semline::Candidate& b) const { return a.logit > b.logit; }
};
struct Never {  // keeps the first candidate
  bool operator()(const semline::Candidate&, const semline::Candidate&) const { return false; }
};

template <class Better>
semline::StageEntry select_entry(std::string variant, std::string description) {
  semline::StageEntry e;
  e.kind = semline::StageKind::Sampler;
  e.variant = std::move(variant);
  e.backend = "any";
  e.description = std::move(description);
  e.make_sampler = [](const semline::StageContext&) -> std::unique_ptr<semline::Sampler> {
    return std::make_unique<SelectSampler<Better>>();
  };
  return e;
}

}  // namespace test_plugins
