// Locally typical sampling (Meister et al., "Locally Typical Sampling", 2022).
//
// The model's next-token distribution has an entropy H: the information a token is expected to
// carry. A token's own information is -log p. Locally typical sampling keeps the tokens whose
// information is closest to H, adding them from the closest outwards until their probability mass
// reaches typical_p, and drops the rest: both the very likely tokens that say less than expected
// (repetition) and the unlikely ones that say more (incoherence). A later sampler in the chain
// draws from what remains.
#include <semline/plugin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace {

// A NaN logit (a broken row) counts as -inf: it never takes probability.
double logit_of(const semline::Candidate& x) {
  return std::isnan(x.logit) ? -std::numeric_limits<double>::infinity() : double(x.logit);
}

class TypicalSampler final : public semline::Sampler {
 public:
  explicit TypicalSampler(double typical_p) : typical_p_(typical_p) {}

  void apply(semline::Candidates& c, std::span<const int32_t>) override {
    c.selected = -1;  // like every filter: a selection made before the cut no longer holds
    if (c.items.size() < 2 || typical_p_ >= 1.0) return;

    // Softmax in double, shifted by the largest logit so exp cannot overflow.
    double max_logit = -std::numeric_limits<double>::infinity();
    for (const auto& x : c.items) max_logit = std::max(max_logit, logit_of(x));
    // All masked out, or an infinite logit: no distribution to measure; leave the set as it is.
    if (!std::isfinite(max_logit)) return;
    std::vector<double> p(c.items.size());
    double sum = 0;
    for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp(logit_of(c.items[i]) - max_logit);
    double entropy = 0;
    for (double& q : p) {
      q /= sum;
      if (q > 0) entropy -= q * std::log(q);
    }

    // Distance of each token's information from the expected information; masked tokens (p = 0)
    // are infinitely far and never kept while any other token remains.
    std::vector<double> distance(p.size());
    for (size_t i = 0; i < p.size(); ++i)
      distance[i] = p[i] > 0 ? std::abs(-std::log(p[i]) - entropy) : std::numeric_limits<double>::infinity();
    std::vector<size_t> order(p.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return distance[a] < distance[b]; });

    size_t keep = 0;
    double mass = 0;
    while (keep < order.size() && (keep == 0 || (mass < typical_p_ && p[order[keep]] > 0))) mass += p[order[keep++]];

    std::vector<semline::Candidate> kept;
    kept.reserve(keep);
    for (size_t k = 0; k < keep; ++k) {
      semline::Candidate x = c.items[order[k]];
      x.p = float(p[order[k]] / mass);
      kept.push_back(x);
    }
    // The order "sorted" promises: descending logit, ties by the lower id.
    std::sort(kept.begin(), kept.end(), [](const semline::Candidate& a, const semline::Candidate& b) {
      return logit_of(a) != logit_of(b) ? logit_of(a) > logit_of(b) : a.id < b.id;
    });
    c.items = std::move(kept);
    c.sorted = true;
  }

 private:
  double typical_p_;
};

void register_all(semline::Registry& r) {
  r.add_stage({
      .kind = semline::StageKind::Sampler, .variant = "typical", .backend = "any",
      .description = "locally typical sampling: keeps the tokens whose information is closest to the entropy",
      .params = {{"typical_p", semline::ParamType::Float, 0.95,
                  "probability mass of the most typical tokens kept; 1 keeps every token", 0.0, 1.0, {}}},
      .make_sampler = [](const semline::StageContext& ctx) -> std::unique_ptr<semline::Sampler> {
        return std::make_unique<TypicalSampler>(ctx.params.get_float("typical_p"));
      },
  });
}

}  // namespace

SEMLINE_PLUGIN("sampler-typical", TYPICAL_PLUGIN_VERSION, "Locally typical sampling (an out-of-tree example)",
               register_all)
