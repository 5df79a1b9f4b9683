// Members that pick, rescale or cut the candidate set.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "samplers.h"

namespace semline::samplers {
namespace {

float rank_key(float logit) { return std::isnan(logit) ? -std::numeric_limits<float>::infinity() : logit; }

void check_unit(const char* name, double v) {
  if (!(v >= 0 && v <= 1)) throw Error(std::string(name) + " = " + shown(v) + ": expected a value in 0..1");
}

}  // namespace

void Greedy::apply(Candidates& c, std::span<const int32_t>) { c.selected = best_index(c); }

Temperature::Temperature(double t) : t_(t) {
  if (!(t >= 0) || std::isinf(t)) throw Error("temperature = " + shown(t) + ": expected a finite value >= 0");
}

void Temperature::apply(Candidates& c, std::span<const int32_t>) {
  c.selected = -1;
  if (c.items.empty()) return;
  if (t_ == 0) {
    Candidate best = c.items[best_index(c)];
    best.p = 1.0f;
    c.items.assign(1, best);
    c.sorted = true;
    return;
  }
  // Dividing by a positive number keeps the order, so a sorted set stays sorted.
  for (Candidate& x : c.items) x.logit = static_cast<float>(x.logit / t_);
}

TopK::TopK(int64_t k) : k_(k) {
  if (k < 0) throw Error("top_k = " + std::to_string(k) + ": expected >= 0 (0 keeps all)");
}

void TopK::apply(Candidates& c, std::span<const int32_t>) {
  c.selected = -1;
  if (k_ == 0 || k_ >= static_cast<int64_t>(c.items.size())) return;
  if (!c.sorted) std::partial_sort(c.items.begin(), c.items.begin() + k_, c.items.end(), ranks_before);
  c.items.resize(k_);
  c.sorted = true;
}

TopP::TopP(double p) : p_(p) { check_unit("top_p", p); }

void TopP::apply(Candidates& c, std::span<const int32_t>) {
  c.selected = -1;
  if (c.items.empty()) return;
  softmax(c);
  double total = 0;
  for (size_t i = 0; i < c.items.size(); ++i) {
    total += c.items[i].p;
    if (total >= p_) {
      c.items.resize(i + 1);
      return;
    }
  }
}

MinP::MinP(double p) : p_(p) { check_unit("min_p", p); }

// p_i >= min_p * p_max compared as logits, l_i - l_max >= log(min_p), so that probabilities too
// small for a float cannot decide.
void MinP::apply(Candidates& c, std::span<const int32_t>) {
  c.selected = -1;
  if (c.items.empty()) return;
  sort_candidates(c);
  const float top = rank_key(c.items.front().logit);
  // Without a finite top the softmax shares everything among the equals of the top.
  const double floor = std::isfinite(top) ? top + std::log(p_) : top;
  size_t keep = 1;
  while (keep < c.items.size() && rank_key(c.items[keep].logit) >= floor) ++keep;
  c.items.resize(keep);
}

LogitBias::LogitBias(std::vector<int64_t> ids, std::vector<double> biases, int32_t n_vocab) {
  if (ids.size() != biases.size())
    throw Error("logit_bias_ids has " + std::to_string(ids.size()) + " ids and logit_bias_values " +
                std::to_string(biases.size()) + " values; give one value per id");
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || (n_vocab > 0 && ids[i] >= n_vocab))
      throw Error("logit_bias: token " + std::to_string(ids[i]) + " is outside the vocabulary (0.." +
                  std::to_string(n_vocab - 1) + ")");
    if (!std::isfinite(biases[i]))
      throw Error("logit_bias: the bias of token " + std::to_string(ids[i]) + " is " + shown(biases[i]) +
                  "; expected a finite value");
    if (static_cast<size_t>(ids[i]) >= bias_.size()) bias_.resize(static_cast<size_t>(ids[i]) + 1, 0.0f);
    bias_[static_cast<size_t>(ids[i])] += static_cast<float>(biases[i]);
  }
}

void LogitBias::apply(Candidates& c, std::span<const int32_t>) {
  c.selected = -1;
  for (Candidate& x : c.items)
    if (static_cast<size_t>(x.id) < bias_.size() && bias_[static_cast<size_t>(x.id)] != 0.0f) {
      x.logit += bias_[static_cast<size_t>(x.id)];
      c.sorted = false;
    }
}

}  // namespace semline::samplers
