#include "core/engine/generator.h"

#include <numeric>

namespace semline {

std::span<const float> step_sequence(Pipeline& p, int32_t seq, std::span<const int32_t> tokens,
                                     std::span<const int32_t> output_rows) {
  const auto n = static_cast<int32_t>(tokens.size());
  p.kv().reserve(seq, n);
  SeqView sv = p.kv().view(seq);
  std::vector<int32_t> pos(tokens.size()), seq_idx(tokens.size(), 0);
  std::iota(pos.begin(), pos.end(), sv.n_past);
  Batch b;
  b.n_tokens = n;
  b.tokens = tokens.data();
  b.positions = pos.data();
  b.seq = seq_idx.data();
  b.n_seqs = 1;
  b.seqs = &sv;
  b.n_outputs = static_cast<int32_t>(output_rows.size());
  b.output_rows = output_rows.data();
  const std::span<const float> logits = p.forward(b);
  p.kv().advance(seq, tokens);
  return logits;
}

std::span<const float> prefill(Pipeline& p, int32_t seq, std::span<const int32_t> tokens) {
  std::span<const float> logits;
  for (size_t start = 0; start < tokens.size(); start += p.max_batch_tokens()) {
    const size_t n = std::min<size_t>(p.max_batch_tokens(), tokens.size() - start);
    const int32_t last = static_cast<int32_t>(n) - 1;
    const bool final_chunk = start + n == tokens.size();
    logits = step_sequence(p, seq, tokens.subspan(start, n), std::span<const int32_t>(&last, final_chunk ? 1 : 0));
  }
  return logits;
}

GenerateResult generate(Pipeline& p, const std::vector<int32_t>& prompt, const GenerateOptions& opt,
                        const std::function<void(std::string_view)>& on_text) {
  Engine engine(p, EngineOptions{.max_seqs = 1, .speculative = opt.speculative});
  RequestOptions r;
  r.prompt = prompt;
  r.sampling = opt.sampling;
  r.max_tokens = opt.max_tokens;
  r.stop = opt.stop;
  r.ignore_eos = !opt.stop_at_eos;
  GenerateResult out;
  out.n_prompt = static_cast<int32_t>(prompt.size());
  const auto t0 = Clock::now();
  FinishReason finish = FinishReason::None;
  std::string error;
  ChoiceStats stats;
  engine.submit(std::move(r), [&](const Update& u) {
    out.tokens.insert(out.tokens.end(), u.tokens.begin(), u.tokens.end());
    out.text += u.text;
    if (on_text && !u.text.empty()) on_text(u.text);
    if (u.finish != FinishReason::None) {
      finish = u.finish;
      error = u.error;
      stats = *u.stats;
    }
  });
  engine.run();
  if (finish == FinishReason::Error) throw Error(error);
  out.stop_reason = finish_reason_name(finish);
  auto seconds = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  if (stats.first_token != Clock::time_point{}) {
    out.prompt_seconds = seconds(t0, stats.first_token);
    out.ttft_seconds = out.prompt_seconds;
    out.gen_seconds = seconds(stats.first_token, stats.finished);
  }
  out.draft_steps = stats.draft_steps;
  out.draft_tokens = stats.draft_tokens;
  out.accepted_tokens = stats.accepted_tokens;
  return out;
}

}  // namespace semline
