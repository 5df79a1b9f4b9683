#include "common/pipeline_logits.h"

#include <algorithm>

namespace semline::testing {

std::vector<std::vector<float>> all_logits(Pipeline& p, const std::vector<int32_t>& tokens, int chunk) {
  std::vector<std::vector<float>> out;
  const int32_t seq = p.kv().new_sequence();
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(chunk)) {
    const int32_t n = static_cast<int32_t>(std::min<size_t>(static_cast<size_t>(chunk), tokens.size() - start));
    p.kv().reserve(seq, n);
    SeqView sv = p.kv().view(seq);
    std::vector<int32_t> pos(n), seqs(n, 0), rows(n);
    for (int32_t i = 0; i < n; ++i) pos[i] = sv.n_past + i, rows[i] = i;
    Batch b;
    b.n_tokens = n;
    b.tokens = tokens.data() + start;
    b.positions = pos.data();
    b.seq = seqs.data();
    b.n_seqs = 1;
    b.seqs = &sv;
    b.n_outputs = n;
    b.output_rows = rows.data();
    auto logits = p.forward(b);
    const size_t v = logits.size() / static_cast<size_t>(n);
    for (int32_t i = 0; i < n; ++i) out.emplace_back(logits.begin() + i * v, logits.begin() + (i + 1) * v);
    p.kv().advance(seq, std::span<const int32_t>(tokens).subspan(start, static_cast<size_t>(n)));
  }
  p.kv().free_sequence(seq);
  return out;
}

}  // namespace semline::testing
