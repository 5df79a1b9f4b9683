// Members that lower the logits of recently seen tokens.
#include <algorithm>
#include <cmath>
#include <string>

#include "samplers.h"

namespace semline::samplers {
namespace {

void check_window(int64_t last_n) {
  if (last_n < -1) throw Error("repeat_last_n = " + std::to_string(last_n) + ": expected -1 (all), 0 (off) or more");
}

}  // namespace

void WindowCounts::count(std::span<const int32_t> history, int64_t last_n) {
  counts_.clear();
  size_t n = last_n < 0 ? history.size() : std::min(history.size(), static_cast<size_t>(last_n));
  scratch_.assign(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
  std::sort(scratch_.begin(), scratch_.end());
  for (int32_t id : scratch_) {
    if (!counts_.empty() && counts_.back().first == id)
      ++counts_.back().second;
    else
      counts_.emplace_back(id, 1);
  }
}

int64_t WindowCounts::of(int32_t id) const {
  auto it = std::lower_bound(counts_.begin(), counts_.end(), id,
                             [](const std::pair<int32_t, int64_t>& e, int32_t v) { return e.first < v; });
  return it != counts_.end() && it->first == id ? it->second : 0;
}

RepetitionPenalty::RepetitionPenalty(double penalty, int64_t last_n) : penalty_(penalty), last_n_(last_n) {
  if (!(penalty > 0) || std::isinf(penalty))
    throw Error("repeat_penalty = " + shown(penalty) + ": expected a finite value > 0 (1 is off)");
  check_window(last_n);
}

void RepetitionPenalty::apply(Candidates& c, std::span<const int32_t> history) {
  c.selected = -1;
  if (penalty_ == 1 || last_n_ == 0 || history.empty()) return;
  window_.count(history, last_n_);
  for (Candidate& x : c.items) {
    if (window_.of(x.id) == 0) continue;
    x.logit = static_cast<float>(x.logit > 0 ? x.logit / penalty_ : x.logit * penalty_);
    c.sorted = false;
  }
}

CountPenalty::CountPenalty(double frequency, double presence, int64_t last_n)
    : frequency_(frequency), presence_(presence), last_n_(last_n) {
  if (!std::isfinite(frequency))
    throw Error("frequency_penalty = " + shown(frequency) + ": expected a finite value (0 is off)");
  if (!std::isfinite(presence))
    throw Error("presence_penalty = " + shown(presence) + ": expected a finite value (0 is off)");
  check_window(last_n);
}

void CountPenalty::apply(Candidates& c, std::span<const int32_t> history) {
  c.selected = -1;
  if ((frequency_ == 0 && presence_ == 0) || last_n_ == 0 || history.empty()) return;
  window_.count(history, last_n_);
  for (Candidate& x : c.items) {
    int64_t n = window_.of(x.id);
    if (n == 0) continue;
    x.logit = static_cast<float>(x.logit - (static_cast<double>(n) * frequency_ + presence_));
    c.sorted = false;
  }
}

}  // namespace semline::samplers
