// The seeded random draw that ends a sampling chain.
#include "samplers.h"

namespace semline::samplers {

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

Draw::Draw(uint64_t seed) : seed_(seed), rng_(seed) {}

void Draw::reset() { rng_.seed(seed_); }

void Draw::apply(Candidates& c, std::span<const int32_t>) {
  c.selected = -1;
  if (c.items.empty()) return;
  softmax(c);
  double total = 0;
  for (const Candidate& x : c.items) total += x.p;
  // Scaling u by the actual total keeps float rounding in the probabilities from biasing the walk.
  const double target = uniform01(rng_) * total;
  double running = 0;
  size_t last_possible = 0;
  for (size_t i = 0; i < c.items.size(); ++i) {
    if (c.items[i].p > 0) last_possible = i;
    running += c.items[i].p;
    if (target < running) {
      c.selected = static_cast<int32_t>(i);
      return;
    }
  }
  c.selected = static_cast<int32_t>(last_possible);  // target met the total through rounding
}

}  // namespace semline::samplers
