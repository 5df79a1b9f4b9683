#include "core/engine/draft_proposer.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <semline/error.h>

namespace semline {

DraftProposer::DraftProposer(Pipeline& draft) : line_(draft) {}

DraftProposer::~DraftProposer() {
  for (auto& [id, s] : seqs_) forget(s);
}

void DraftProposer::forget(Seq& s) {
  if (s.kv >= 0) line_.kv().free_sequence(s.kv);
  s = Seq{};
}

void DraftProposer::release(uint64_t seq) {
  const auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  forget(it->second);
  seqs_.erase(it);
}

void DraftProposer::propose(std::span<DraftRequest> requests) {
  feeds_.clear();
  for (DraftRequest& r : requests) {
    if (r.k < 1 || r.tokens.empty()) continue;
    Seq& s = seqs_[r.seq];
    if (s.kv < 0) {
      // A new sequence starts from the draft cache's longest cached prefix of it (a shared
      // system prompt, a sibling choice), as the model's does.
      s.kv = line_.kv().new_sequence();
      const int32_t hit = line_.kv().blocks().attach_prefix(s.kv, r.tokens);
      s.cached.assign(r.tokens.begin(), r.tokens.begin() + hit);
    }
    // What the draft cache shares with the sequence stays; the last token is always computed
    // again if need be, since its logits give the first draft.
    const size_t shared = std::min<size_t>(
        static_cast<size_t>(std::mismatch(s.cached.begin(), s.cached.end(), r.tokens.begin(), r.tokens.end()).first -
                            s.cached.begin()),
        r.tokens.size() - 1);
    if (shared < s.cached.size()) {
      const int32_t kept = line_.kv().blocks().truncate(s.kv, r.tokens.first(shared));
      s.cached.resize(static_cast<size_t>(kept));
    }
    feeds_.push_back(Feed{&s, &r, std::vector<int32_t>(r.tokens.begin() + static_cast<std::ptrdiff_t>(s.cached.size()), r.tokens.end())});
  }
  // Then one token at a time, every sequence that wants more drafts in the same batch.
  while (!feeds_.empty()) {
    run(feeds_);
    std::erase_if(feeds_, [](const Feed& f) {
      return f.stopped || f.request->draft.empty() ||
             static_cast<int32_t>(f.request->draft.size()) >= f.request->k;
    });
    for (Feed& f : feeds_) {
      f.tokens.assign(1, f.request->draft.back());
      f.done = 0;
    }
  }
}

// Computes every feed's tokens, in as many forwards as the step budget needs (a long catch-up,
// such as a new sequence's prompt, is chunked like a prefill); after a feed's last token the
// draft model's most likely next token is drafted. A sequence the draft cache has no room for
// gets no more drafts this step and starts over the next.
void DraftProposer::run(std::vector<Feed>& feeds) {
  KvCache& kv = line_.kv();
  const int64_t n_vocab = line_.hp().n_vocab;
  for (;;) {
    step_.clear();
    std::vector<std::pair<Feed*, int32_t>> in_step;
    int32_t budget = line_.max_batch_tokens();
    for (Feed& f : feeds) {
      const int32_t left = static_cast<int32_t>(f.tokens.size() - f.done);
      const int32_t n = std::min(left, budget);
      if (n <= 0) continue;
      try {
        kv.reserve(f.seq->kv, n);
      } catch (const Error& e) {
        spdlog::debug("draft model: {}", e.what());
        f.done = f.tokens.size();
        f.stopped = true;
        forget(*f.seq);
        continue;
      }
      budget -= n;
      const int32_t past = kv.n_past(f.seq->kv);
      for (int32_t i = 0; i < n; ++i) {
        step_.tokens.push_back(f.tokens[f.done + static_cast<size_t>(i)]);
        step_.positions.push_back(past + i);
        step_.seq.push_back(static_cast<int32_t>(step_.seqs.size()));
      }
      if (n == left) step_.output_rows.push_back(static_cast<int32_t>(step_.tokens.size()) - 1);
      step_.seqs.push_back(kv.view(f.seq->kv));
      in_step.emplace_back(&f, n);
    }
    if (in_step.empty()) return;
    const std::span<const float> logits = line_.forward(step_.batch());
    size_t row = 0;
    for (auto [f, n] : in_step) {
      const auto fed = std::span<const int32_t>(f->tokens).subspan(f->done, static_cast<size_t>(n));
      kv.advance(f->seq->kv, fed);
      f->seq->cached.insert(f->seq->cached.end(), fed.begin(), fed.end());
      f->done += static_cast<size_t>(n);
      if (f->done < f->tokens.size()) continue;
      const auto l = logits.subspan(row++ * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab));
      f->request->draft.push_back(static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin()));
    }
  }
}

std::string vocabulary_difference(const Pipeline& draft, const Pipeline& target) {
  const Tokenizer& d = draft.tokenizer();
  const Tokenizer& t = target.tokenizer();
  if (draft.hp().n_vocab != target.hp().n_vocab || d.n_vocab() != t.n_vocab())
    return "it has " + std::to_string(d.n_vocab()) + " tokens and " + std::to_string(draft.hp().n_vocab) +
           " logits, the model " + std::to_string(t.n_vocab()) + " and " + std::to_string(target.hp().n_vocab);
  if (d.bos() != t.bos() || d.eos() != t.eos())
    return "its BOS and EOS are " + std::to_string(d.bos()) + " and " + std::to_string(d.eos()) + ", the model's " +
           std::to_string(t.bos()) + " and " + std::to_string(t.eos());
  for (int32_t i = 0; i < d.n_vocab(); ++i)
    if (d.piece(i) != t.piece(i))
      return "token " + std::to_string(i) + " is \"" + d.piece(i) + "\" there and \"" + t.piece(i) + "\" in the model";
  return {};
}

std::unique_ptr<DraftLine> load_draft(const Config& config, const StageRegistry& registry, const Pipeline& target) {
  if (config.speculative.proposer != "draft") return nullptr;
  const std::string where = config.speculative.draft_model_pos.file.empty()
                                ? std::string("speculative.draft_model")
                                : config.speculative.draft_model_pos.str() + ": speculative.draft_model";
  if (config.speculative.draft_model.empty())
    throw Error((config.speculative.pos.file.empty() ? std::string("config") : config.speculative.pos.str()) +
                ": speculative.proposer = \"draft\" needs speculative.draft_model (a GGUF file with the model's "
                "vocabulary), or pass --draft FILE");
  Config c = config;
  c.model.path = config.speculative.draft_model;
  c.model.pos = config.speculative.draft_model_pos;
  c.runtime.context = target.kv().options().context;  // the draft follows every position the target reaches
  c.parallel.tensor = c.parallel.pipeline = 1;  // the leader drafts alone
  auto d = std::make_unique<DraftLine>();
  try {
    d->model = open_model_file(c.model.path);
    d->graph = build_graph(c, *d->model, registry);
    d->pipeline = std::make_unique<Pipeline>(d->graph, *d->model, registry, pipeline_options(c));
  } catch (const Error& e) {
    const std::string what = e.what();
    const std::string path = c.model.path.string();
    throw Error(where + (what.rfind(path, 0) == 0 ? ": " : " = " + path + ": ") + what);
  }
  const std::string diff = vocabulary_difference(*d->pipeline, target);
  if (!diff.empty())
    throw Error(where + " = " + c.model.path.string() + ": the draft model's vocabulary differs from the model's: " + diff +
                " (drafts are token ids, so both must share one vocabulary)");
  spdlog::debug("draft model {}: {} layers, dim {}", c.model.path.string(), d->pipeline->hp().n_layer, d->pipeline->hp().n_embd);
  return d;
}

}  // namespace semline
