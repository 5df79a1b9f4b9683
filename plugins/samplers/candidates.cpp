// Ordering and normalising the candidate set.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "samplers.h"

namespace semline::samplers {
namespace {

float rank_key(float logit) { return std::isnan(logit) ? -std::numeric_limits<float>::infinity() : logit; }

}  // namespace

bool ranks_before(const Candidate& a, const Candidate& b) {
  float ka = rank_key(a.logit), kb = rank_key(b.logit);
  if (ka != kb) return ka > kb;
  bool na = std::isnan(a.logit), nb = std::isnan(b.logit);
  if (na != nb) return nb;  // a real -inf before a NaN
  return a.id < b.id;
}

void sort_candidates(Candidates& c) {
  if (c.sorted) return;
  std::sort(c.items.begin(), c.items.end(), ranks_before);
  c.sorted = true;
}

void softmax(Candidates& c) {
  sort_candidates(c);
  if (c.items.empty()) return;
  const double inf = std::numeric_limits<double>::infinity();
  const double top = rank_key(c.items.front().logit);
  if (top == inf || top == -inf) {
    // No finite scale: the candidates at the extreme share everything (all of them when the
    // whole set is -inf or NaN).
    size_t n_top = 0;
    for (const Candidate& x : c.items) n_top += (rank_key(x.logit) == top);
    for (Candidate& x : c.items) x.p = rank_key(x.logit) == top ? static_cast<float>(1.0 / n_top) : 0.0f;
    return;
  }
  double sum = 0;  // at least 1: the top adds exp(0)
  for (Candidate& x : c.items) {
    double e = std::exp(rank_key(x.logit) - top);
    x.p = static_cast<float>(e);
    sum += e;
  }
  for (Candidate& x : c.items) x.p = static_cast<float>(x.p / sum);
}

int32_t best_index(const Candidates& c) {
  if (c.items.empty()) return -1;
  if (c.sorted) return 0;
  // The best key kept in a register: a batch of greedy streams scans a vocabulary each per step.
  int32_t best = 0;
  float top = rank_key(c.items[0].logit);
  for (int32_t i = 1; i < static_cast<int32_t>(c.items.size()); ++i) {
    const float key = rank_key(c.items[i].logit);
    if (key > top) top = key, best = i;
  }
  return best;
}

std::string shown(double v) {
  std::ostringstream out;
  out << v;  // shortest form that reads back as written in a config: 1.5, 0.95, nan, -inf
  return out.str();
}

}  // namespace semline::samplers
