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
  const auto n = static_cast<int32_t>(c.items.size());
  if (n == 0) return -1;
  if (c.sorted) return 0;
  // The top key first, in four maxima that carry no index (a batch of greedy streams scans a
  // vocabulary each per step, and a running best index would chain every comparison), then the
  // first candidate that holds it. A NaN compares false, so the maxima pass over it as rank_key
  // would rank it (-inf).
  constexpr float kLow = -std::numeric_limits<float>::infinity();
  float top4[4] = {kLow, kLow, kLow, kLow};
  int32_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) {
      const float key = c.items[static_cast<size_t>(i + k)].logit;
      top4[k] = top4[k] < key ? key : top4[k];
    }
  for (; i < n; ++i) {
    const float key = c.items[static_cast<size_t>(i)].logit;
    top4[0] = top4[0] < key ? key : top4[0];
  }
  const float top = std::max(std::max(top4[0], top4[1]), std::max(top4[2], top4[3]));
  i = 0;
  while (rank_key(c.items[static_cast<size_t>(i)].logit) != top) ++i;
  return i;
}

std::string shown(double v) {
  std::ostringstream out;
  out << v;  // shortest form that reads back as written in a config: 1.5, 0.95, nan, -inf
  return out.str();
}

}  // namespace semline::samplers
