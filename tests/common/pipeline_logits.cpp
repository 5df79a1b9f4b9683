#include "common/pipeline_logits.h"

#include <algorithm>
#include <numeric>

#include "core/engine/generator.h"

namespace semline::testing {

std::vector<std::vector<float>> all_logits(Pipeline& p, const std::vector<int32_t>& tokens, int chunk) {
  std::vector<std::vector<float>> out;
  const int32_t seq = p.kv().new_sequence();
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(chunk)) {
    const size_t n = std::min<size_t>(static_cast<size_t>(chunk), tokens.size() - start);
    std::vector<int32_t> rows(n);
    std::iota(rows.begin(), rows.end(), 0);
    const auto logits = step_sequence(p, seq, std::span<const int32_t>(tokens).subspan(start, n), rows);
    const size_t v = logits.size() / n;
    for (size_t i = 0; i < n; ++i) out.emplace_back(logits.begin() + i * v, logits.begin() + (i + 1) * v);
  }
  p.kv().free_sequence(seq);
  return out;
}

}  // namespace semline::testing
