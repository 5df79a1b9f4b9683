#include "core/engine/generator.h"

#include <chrono>
#include <numeric>

#include "core/engine/text_stream.h"

namespace semline {

int32_t sample(std::vector<std::unique_ptr<Sampler>>& chain, std::span<const float> logits,
               std::span<const int32_t> history, Candidates& c) {
  c.items.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c.items[i] = Candidate{static_cast<int32_t>(i), logits[i], 0.0f};
  c.sorted = false;
  c.selected = -1;
  for (auto& s : chain) s->apply(c, history);
  if (c.selected < 0 || c.selected >= static_cast<int32_t>(c.items.size()))
    throw Error("the sampler chain selected no token: end it with 'greedy' or 'draw'");
  return c.items[c.selected].id;
}

std::span<const float> prefill(Pipeline& p, int32_t seq, std::span<const int32_t> tokens) {
  std::span<const float> logits;
  std::vector<int32_t> pos, seq_idx(p.max_batch_tokens(), 0);
  for (size_t start = 0; start < tokens.size(); start += p.max_batch_tokens()) {
    const int32_t n = static_cast<int32_t>(std::min<size_t>(p.max_batch_tokens(), tokens.size() - start));
    p.kv().reserve(seq, n);
    SeqView sv = p.kv().view(seq);
    pos.resize(n);
    std::iota(pos.begin(), pos.end(), sv.n_past);
    const int32_t last = n - 1;
    const bool final_chunk = start + n == tokens.size();
    Batch b;
    b.n_tokens = n;
    b.tokens = tokens.data() + start;
    b.positions = pos.data();
    b.seq = seq_idx.data();
    b.n_seqs = 1;
    b.seqs = &sv;
    b.n_outputs = final_chunk ? 1 : 0;
    b.output_rows = &last;
    logits = p.forward(b);
    p.kv().advance(seq, n);
  }
  return logits;
}

GenerateResult generate(Pipeline& p, const std::vector<int32_t>& prompt, const GenerateOptions& opt,
                        const std::function<void(std::string_view)>& on_text) {
  using clock = std::chrono::steady_clock;
  if (prompt.empty()) throw Error("the prompt is empty: nothing to continue from");
  GenerateResult r;
  r.n_prompt = static_cast<int32_t>(prompt.size());
  const int32_t seq = p.kv().new_sequence();
  struct Release {
    Pipeline& p;
    int32_t seq;
    ~Release() { p.kv().free_sequence(seq); }
  } release{p, seq};
  for (auto& s : p.samplers()) s->reset();

  const auto t0 = clock::now();
  std::span<const float> logits = prefill(p, seq, prompt);
  const auto t_prefill = clock::now();
  r.prompt_seconds = std::chrono::duration<double>(t_prefill - t0).count();

  std::vector<int32_t> history = prompt;
  TextStream text(opt.stop);
  Candidates cand;
  const int32_t eos = p.tokenizer().eos();
  clock::time_point t_first;
  r.stop_reason = "length";
  for (int32_t i = 0; i < opt.max_tokens; ++i) {
    const int32_t tok = sample(p.samplers(), logits, history, cand);
    if (i == 0) {
      t_first = clock::now();
      r.ttft_seconds = std::chrono::duration<double>(t_first - t0).count();
    }
    if (opt.stop_at_eos && tok == eos) {
      r.stop_reason = "eos";
      break;
    }
    r.tokens.push_back(tok);
    history.push_back(tok);
    std::string out = text.push(p.tokenizer().token_bytes(tok));
    r.text += out;
    if (on_text && !out.empty()) on_text(out);
    if (text.stopped()) {
      r.stop_reason = "stop string";
      break;
    }
    if (i + 1 == opt.max_tokens) break;
    logits = prefill(p, seq, std::span<const int32_t>(&tok, 1));
  }
  std::string rest = text.finish();
  r.text += rest;
  if (on_text && !rest.empty()) on_text(rest);
  if (!r.tokens.empty()) r.gen_seconds = std::chrono::duration<double>(clock::now() - t_first).count();
  return r;
}

}  // namespace semline
