#include "core/engine/engine.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include <spdlog/spdlog.h>

namespace semline {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::None: return "none";
    case FinishReason::Eos: return "eos";
    case FinishReason::StopString: return "stop string";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
  }
  return "?";
}

// One choice of a request: a sequence for the scheduler, its own chain, text and stats.
struct Engine::Choice : SchedSeq {
  Request* req = nullptr;
  int32_t index = 0;
  std::vector<std::unique_ptr<Sampler>> chain;
  TextStream text;
  ChoiceStats stats;
  bool seen = false;  // scheduled at least once
  bool done = false;
  Update pending;     // what this step produced
  uint64_t id = 0;    // names the sequence to the proposer
  DraftLength draft_len{1, false};
};

// A choice whose logits this step computed: rows [first, first + n_draft] of the step's logits,
// the last real token's and one per draft.
struct Engine::Output {
  Choice* c;
  size_t item;    // in the plan
  size_t first;   // logits row
  std::vector<int32_t> draft;
  std::vector<int32_t> picks;  // sampled tokens: the accepted drafts, then one more
  std::vector<TokenLogprob> logprobs;
  std::string error;
};

// A step on its way through the line: its plan, the arrays its batch points into and the
// choices whose logits it computes.
struct Engine::Flight {
  StepPlan plan;
  StepArrays arrays;
  std::vector<Output> outputs;
};

struct Engine::Request {
  uint64_t id = 0;
  RequestOptions opt;
  UpdateFn on_update;
  std::vector<std::unique_ptr<Choice>> choices;
  int32_t open = 0;  // choices not finished
};

EngineOptions engine_options(const Config& config, Pipeline* draft) {
  EngineOptions o;
  o.max_seqs = config.runtime.max_seqs;
  o.threads = config.runtime.threads > 0 ? config.runtime.threads
                                         : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  o.speculative.proposer = config.speculative.proposer;
  o.speculative.proposer_pos = config.speculative.proposer_pos;
  o.speculative.params = config.speculative.params;
  o.speculative.k = config.speculative.k;
  o.speculative.adaptive = config.speculative.adaptive;
  o.speculative.ngram_min = config.speculative.ngram_min;
  o.speculative.ngram_max = config.speculative.ngram_max;
  o.speculative.draft = draft;
  return o;
}

Engine::Engine(Pipeline& line, const EngineOptions& opt)
    : line_(line),
      samplers_(line.graph(), line.registry(), line.tokenizer()),
      opt_(opt),
      sched_(line.kv().blocks(), SchedulerOptions{line.max_batch_tokens(), opt.max_seqs}),
      workers_(std::max(1, opt.threads)),
      cands_(static_cast<size_t>(workers_.size())),
      proposer_(make_proposer(opt.speculative, line, opt.max_seqs)) {}

Engine::~Engine() {
  // The steps in flight come back first: the line's stages finish what they hold.
  for (; !flights_.empty(); flights_.pop_front()) {
    try {
      line_.collect();
    } catch (const std::exception& e) {
      spdlog::error("a step in flight did not come back: {}", e.what());
    }
  }
  // Sequences give their blocks back: the line and its cache outlive the engine.
  for (auto& r : requests_)
    for (auto& c : r->choices) sched_.remove(c.get());
}

uint64_t Engine::submit(RequestOptions opt, UpdateFn on_update) {
  const int64_t n_vocab = line_.hp().n_vocab;
  const int32_t context = line_.kv().options().context;
  if (opt.prompt.empty()) throw Error("the prompt is empty: nothing to continue from");
  for (int32_t t : opt.prompt)
    if (t < 0 || t >= n_vocab)
      throw Error("prompt token " + std::to_string(t) + " is outside the vocabulary (0.." + std::to_string(n_vocab - 1) + ")");
  if (static_cast<int64_t>(opt.prompt.size()) >= context)
    throw Error("the prompt has " + std::to_string(opt.prompt.size()) + " tokens and the context holds " +
                std::to_string(context) + ", leaving no room to generate (shorten it, or raise runtime.context)");
  const BlockManager& blocks = line_.kv().blocks();
  const int64_t prompt_blocks = (static_cast<int64_t>(opt.prompt.size()) + blocks.block_tokens() - 1) / blocks.block_tokens();
  if (blocks.window() == 0 && prompt_blocks > blocks.n_blocks())
    throw Error("the prompt of " + std::to_string(opt.prompt.size()) + " tokens needs more than the " +
                std::to_string(blocks.n_blocks()) + " blocks of " + std::to_string(blocks.block_tokens()) +
                " positions the KV cache pool holds (set kv_cache.size_mib or kv_cache.blocks)");
  if (opt.max_tokens < -1)
    throw Error("max_tokens = " + std::to_string(opt.max_tokens) + ": expected 0 or more (-1: up to the context)");
  if (opt.n < 1 || opt.n > 128) throw Error("n = " + std::to_string(opt.n) + ": expected 1..128 choices");
  if (opt.logprobs < -1 || opt.logprobs > 20)
    throw Error("logprobs = " + std::to_string(opt.logprobs) + ": expected 0..20 most likely tokens");

  auto r = std::make_unique<Request>();
  r->on_update = std::move(on_update);
  for (int32_t i = 0; i < opt.n; ++i) {
    auto c = std::make_unique<Choice>();
    c->req = r.get();
    c->index = i;
    c->id = next_choice_++;
    c->chain = samplers_.make(opt.sampling, i);
    c->text = TextStream(opt.stop);
    c->tokens = opt.prompt;
    c->hold = i > 0;  // siblings wait for the first choice's prompt blocks
    if (line_.recurrent() && line_.kv().options().prefix_caching)  // and, here, its state there
      c->pause_at = static_cast<int32_t>((opt.prompt.size() - 1) / static_cast<size_t>(blocks.block_tokens())) *
                    blocks.block_tokens();
    c->stats.n_prompt = static_cast<int32_t>(opt.prompt.size());
    c->stats.arrival = Clock::now();
    c->draft_len = DraftLength(opt_.speculative.k, opt_.speculative.adaptive);
    r->choices.push_back(std::move(c));
  }
  r->open = opt.n;
  r->opt = std::move(opt);
  std::lock_guard lock(inbox_mutex_);
  r->id = next_id_++;
  const uint64_t id = r->id;
  inbox_.push_back(std::move(r));
  return id;
}

void Engine::cancel(uint64_t request) {
  std::lock_guard lock(inbox_mutex_);
  cancels_.push_back(request);
}

bool Engine::busy() const {
  std::lock_guard lock(inbox_mutex_);
  return !requests_.empty() || !inbox_.empty();
}

void Engine::take_inbox() {
  std::vector<std::unique_ptr<Request>> arrived;
  std::vector<uint64_t> cancels;
  {
    std::lock_guard lock(inbox_mutex_);
    arrived.swap(inbox_);
    cancels.swap(cancels_);
  }
  for (auto& r : arrived) {
    for (auto& c : r->choices) {
      if (r->opt.max_tokens == 0) {
        finish(*c, FinishReason::Length);
        continue;
      }
      sched_.add(c.get());
    }
    requests_.push_back(std::move(r));
  }
  std::vector<uint64_t> later;  // requests with a choice in a step in flight: once it has landed
  for (uint64_t id : cancels)
    for (auto& r : requests_)
      if (r->id == id) {
        bool flying = false;
        for (auto& c : r->choices) {
          if (c->in_flight) flying = true;
          else finish(*c, FinishReason::Cancelled);
        }
        if (flying) later.push_back(id);
      }
  if (!later.empty()) {
    std::lock_guard lock(inbox_mutex_);
    cancels_.insert(cancels_.end(), later.begin(), later.end());
  }
}

void Engine::release_siblings() {
  for (auto& r : requests_) {
    if (r->choices.size() < 2) continue;
    const Choice& first = *r->choices[0];
    if (first.done || first.n_computed >= first.stats.n_prompt - 1)
      for (auto& c : r->choices) c->hold = false;
  }
}

// A recurrent line's sequences that reached their pause point this step leave their state there
// for later sequences with the same prefix (StatePool::keep).
void Engine::keep_states(const StepPlan& plan) {
  for (const StepItem& it : plan.items) {
    const SchedSeq& s = *it.seq;
    if (s.pause_at > 0 && s.n_computed == s.pause_at)
      line_.state().keep(line_.kv().blocks().prefix_key(s.kv), s.kv);
  }
}

void Engine::finish(Choice& c, FinishReason why, std::string error) {
  if (c.done) return;
  c.done = true;
  sched_.remove(&c);
  if (proposer_) {
    try {
      proposer_->release(c.id);
    } catch (const std::exception& e) {
      proposer_failed(e.what());
    }
  }
  c.pending.text += c.text.finish();
  c.pending.finish = why;
  c.pending.error = std::move(error);
  c.stats.finished = Clock::now();
  c.stats.n_generated = static_cast<int32_t>(c.tokens.size()) - c.stats.n_prompt + (why == FinishReason::Eos ? 1 : 0);
  --c.req->open;
}

TokenLogprob Engine::logprob(std::span<const float> logits, int32_t token, int32_t top) const {
  // log-softmax of the model's row, in double.
  double mx = -INFINITY;
  for (float l : logits) mx = std::max(mx, static_cast<double>(l));
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - mx);
  const double lse = mx + std::log(sum);
  TokenLogprob lp;
  lp.token = token;
  lp.logprob = static_cast<float>(logits[static_cast<size_t>(token)] - lse);
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const size_t k = std::min(static_cast<size_t>(top), ids.size());
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  });
  for (size_t i = 0; i < k; ++i) lp.top.emplace_back(ids[i], static_cast<float>(logits[static_cast<size_t>(ids[i])] - lse));
  return lp;
}

// Samples the output's rows in order, each with the history plain decoding would have had, while
// the sample agrees with the draft; returns the drafts accepted. The picks stay appended to the
// choice's tokens until accept() takes them (the scheduler's commit reads the accepted ones there).
int32_t Engine::verify(Output& o, std::span<const float> logits, Candidates& cand) {
  Choice& c = *o.c;
  const size_t v = static_cast<size_t>(line_.hp().n_vocab);
  const int32_t top = c.req->opt.logprobs;
  for (size_t i = 0; i <= o.draft.size(); ++i) {
    const std::span<const float> row = logits.subspan((o.first + i) * v, v);
    const int32_t tok = sample_chain(c.chain, row, c.tokens, cand);
    if (c.stats.first_token == Clock::time_point{}) c.stats.first_token = Clock::now();
    if (top >= 0) o.logprobs.push_back(logprob(row, tok, top));
    o.picks.push_back(tok);
    c.tokens.push_back(tok);
    if (i == o.draft.size() || tok != o.draft[i]) break;
  }
  const int32_t accepted = static_cast<int32_t>(o.picks.size()) - 1;
  if (!o.draft.empty()) {
    ++c.stats.draft_steps;
    c.stats.draft_tokens += static_cast<int32_t>(o.draft.size());
    c.stats.accepted_tokens += accepted;
    c.draft_len.update(static_cast<int32_t>(o.draft.size()), accepted);
  }
  return accepted;
}

void Engine::accept(Choice& c, int32_t tok) {
  const RequestOptions& o = c.req->opt;
  ++counters_.generation_tokens;
  if ((!o.ignore_eos && line_.tokenizer().is_eog(tok)) ||
      std::find(o.stop_tokens.begin(), o.stop_tokens.end(), tok) != o.stop_tokens.end()) {
    finish(c, FinishReason::Eos);
    return;
  }
  c.tokens.push_back(tok);
  c.pending.tokens.push_back(tok);
  c.pending.text += c.text.push(line_.tokenizer().token_bytes(tok));
  const int32_t generated = static_cast<int32_t>(c.tokens.size()) - c.stats.n_prompt;
  if (c.text.stopped()) finish(c, FinishReason::StopString);
  else if (o.max_tokens >= 0 && generated >= o.max_tokens) finish(c, FinishReason::Length);
  else if (static_cast<int32_t>(c.tokens.size()) >= line_.kv().options().context) finish(c, FinishReason::Length);
}

// A proposer's failure costs drafts only; the first is an error in the log, the rest (a proposer
// that fails every step) are debug lines.
void Engine::proposer_failed(const std::string& why) {
  ++counters_.spec_proposer_errors;
  if (counters_.spec_proposer_errors == 1)
    spdlog::error("speculative decoding: the {} proposer failed, its step goes without drafts (later failures "
                  "are logged at debug level): {}", opt_.speculative.proposer, why);
  else
    spdlog::debug("speculative decoding: the {} proposer failed again: {}", opt_.speculative.proposer, why);
}

// Drafts for the choices that decode this step, as long as the request's limits leave room for
// them and the token after them. A proposer that fails leaves the step without drafts.
void Engine::propose() {
  if (!proposer_) return;
  const int32_t context = line_.kv().options().context;
  drafts_.clear();
  drafting_.clear();
  for (auto& r : requests_)
    for (auto& c : r->choices) {
      if (c->done || c->kv < 0 || c->in_flight || c->n_draft > 0 || !c->decoding()) continue;
      const int32_t size = static_cast<int32_t>(c->tokens.size());
      int32_t room = context - size;  // positions left before the context ends, the drafts' and the next token's
      if (r->opt.max_tokens >= 0) room = std::min(room, r->opt.max_tokens - (size - c->stats.n_prompt));
      const int32_t k = std::min(c->draft_len.next(), room - 1);
      if (k < 1) continue;
      drafts_.push_back(DraftRequest{c->id, c->tokens, k, {}});
      drafting_.push_back(c.get());
    }
  if (drafts_.empty()) return;
  try {
    proposer_->propose(drafts_);
  } catch (const std::exception& e) {
    proposer_failed(e.what());
    return;
  }
  const int64_t n_vocab = line_.hp().n_vocab;
  for (size_t i = 0; i < drafts_.size(); ++i) {
    std::vector<int32_t>& d = drafts_[i].draft;
    // Only tokens of the vocabulary, and no more than asked for.
    const auto bad = std::find_if(d.begin(), d.end(), [&](int32_t t) { return t < 0 || t >= n_vocab; });
    d.erase(bad, d.end());
    if (static_cast<int32_t>(d.size()) > drafts_[i].k) d.resize(static_cast<size_t>(drafts_[i].k));
    Choice& c = *drafting_[i];
    c.tokens.insert(c.tokens.end(), d.begin(), d.end());
    c.n_draft = static_cast<int32_t>(d.size());
  }
}

// The sequences a step may take: all of them on a line that holds one step; with micro-batches,
// an even share of those no step in flight holds among the steps still to form, so that the
// stages get work of like size.
size_t Engine::share() const {
  const int32_t depth = line_.depth(), free = depth - static_cast<int32_t>(flights_.size());
  if (depth == 1) return SIZE_MAX;
  int32_t ready = 0;
  for (const auto& r : requests_)
    for (const auto& c : r->choices) ready += !c->done && !c->in_flight && !c->hold;
  return static_cast<size_t>(std::max(1, (ready + free - 1) / free));
}

// Plans a step over the sequences no step in flight holds and submits it to the line; false when
// there was nothing to plan.
bool Engine::launch() {
  propose();
  StepPlan plan = sched_.plan(share());
  for (SchedSeq* s : plan.preempted) ++static_cast<Choice*>(s)->stats.preemptions;
  for (auto& [s, why] : plan.failed) finish(*static_cast<Choice*>(s), FinishReason::Error, why);
  // Drafts leave sequences that will not verify them this step (preempted, or cut by the budget).
  for (auto& r : requests_)
    for (auto& c : r->choices) {
      if (c->n_draft == 0 || c->in_flight) continue;
      const auto item = std::find_if(plan.items.begin(), plan.items.end(), [&](const StepItem& it) { return it.seq == c.get(); });
      const int32_t real = static_cast<int32_t>(c->tokens.size()) - c->n_draft;  // tokens before the drafts
      const int32_t keep = item == plan.items.end() ? 0 : std::max(0, c->n_computed + item->n - real);
      c->tokens.resize(c->tokens.size() - static_cast<size_t>(c->n_draft - keep));
      c->n_draft = keep;
    }
  if (plan.items.empty()) return false;

  // A landed step's arrays are reused: nothing is allocated per step once they have grown.
  std::unique_ptr<Flight> f = spare_ ? std::move(spare_) : std::make_unique<Flight>();
  f->arrays.clear();
  f->outputs.clear();
  f->plan = std::move(plan);
  StepArrays& a = f->arrays;
  for (size_t i = 0; i < f->plan.items.size(); ++i) {
    const StepItem& it = f->plan.items[i];
    auto* c = static_cast<Choice*>(it.seq);
    c->in_flight = true;
    if (!c->seen) {
      c->seen = true;
      c->stats.scheduled = Clock::now();
      c->stats.n_cached = c->n_computed;
    }
    for (int32_t t = c->n_computed; t < c->n_computed + it.n; ++t) {
      a.tokens.push_back(c->tokens[static_cast<size_t>(t)]);
      a.positions.push_back(t);
      a.seq.push_back(static_cast<int32_t>(i));
    }
    counters_.prompt_tokens += std::max(0, std::min(c->n_computed + it.n, c->stats.n_prompt) - c->n_computed);
    a.seqs.push_back(line_.kv().view(c->kv));
    if (it.output()) {
      // Logits of the last real token and of every draft after it.
      Output o{c, i, a.output_rows.size(), {}, {}, {}, {}};
      o.draft.assign(c->tokens.end() - c->n_draft, c->tokens.end());
      const auto last = static_cast<int32_t>(a.tokens.size()) - 1;
      for (int32_t d = c->n_draft; d >= 0; --d) a.output_rows.push_back(last - d);
      f->outputs.push_back(std::move(o));
    }
  }
  try {
    line_.submit(a.batch());
  } catch (const std::exception& e) {
    fail_step(*f, e.what());
    spare_ = std::move(f);
    return true;
  }
  if (!flights_.empty()) ++counters_.overlapped_steps;
  flights_.push_back(std::move(f));
  return true;
}

// The line failed a step: its sequences end with the reason; the engine goes on.
void Engine::fail_step(Flight& f, const std::string& why) {
  spdlog::error("{}", why);
  for (const StepItem& it : f.plan.items) {
    auto* c = static_cast<Choice*>(it.seq);
    c->in_flight = false;
    c->tokens.resize(c->tokens.size() - static_cast<size_t>(c->n_draft));
    c->n_draft = 0;
    finish(*c, FinishReason::Error, why);
  }
}

// The oldest step in flight comes back: each output is sampled (and its drafts verified), the
// tokens kept are committed to the cache, then accepted into the choices.
void Engine::land() {
  std::unique_ptr<Flight> f = std::move(flights_.front());
  flights_.pop_front();

  StepPlan& plan = f->plan;
  std::span<const float> logits;
  try {
    logits = line_.collect();
  } catch (const std::exception& e) {
    fail_step(*f, e.what());
    spare_ = std::move(f);  // its arrays serve the next step
    return;
  }
  for (const StepItem& it : plan.items) it.seq->in_flight = false;
  // Verify before the commit, which caches only the tokens kept. Each output touches its own
  // choice and plan item only, so the rows are sampled on all the workers at once.
  workers_.run(static_cast<int64_t>(f->outputs.size()), [&](int64_t i, int worker) {
    Output& o = f->outputs[static_cast<size_t>(i)];
    Choice& c = *o.c;
    c.tokens.resize(c.tokens.size() - o.draft.size());
    c.n_draft = 0;
    try {
      plan.items[o.item].n -= static_cast<int32_t>(o.draft.size()) -
                              verify(o, logits, cands_[static_cast<size_t>(worker)]);
    } catch (const std::exception& e) {
      o.error = e.what();
      plan.items[o.item].n -= static_cast<int32_t>(o.draft.size());
      c.tokens.resize(c.tokens.size() - o.picks.size());
      o.picks.clear();
    }
  });
  for (const Output& o : f->outputs)
    if (!o.draft.empty() && o.error.empty()) {
      ++counters_.spec_drafts;
      counters_.spec_draft_tokens += static_cast<int64_t>(o.draft.size());
      counters_.spec_accepted_tokens += static_cast<int64_t>(o.picks.size()) - 1;
    }
  sched_.commit(plan);
  ++counters_.steps;
  keep_states(plan);
  for (Output& o : f->outputs) {
    Choice& c = *o.c;
    c.tokens.resize(c.tokens.size() - o.picks.size());
    if (!o.error.empty()) finish(c, FinishReason::Error, o.error);
    for (size_t i = 0; i < o.picks.size() && !c.done; ++i) {
      if (i < o.logprobs.size()) c.pending.logprobs.push_back(std::move(o.logprobs[i]));
      accept(c, o.picks[i]);
    }
  }
  spare_ = std::move(f);
}

bool Engine::step() {
  take_inbox();
  release_siblings();
  // As many steps in flight as the line holds (two on a line in pipeline stages), then the oldest
  // comes back.
  bool any = false;
  while (static_cast<int32_t>(flights_.size()) < line_.depth() && launch()) any = true;
  if (!flights_.empty()) {
    land();
    any = true;
  }

  // Updates, then the requests that have ended.
  for (auto it = requests_.begin(); it != requests_.end();) {
    Request& r = **it;
    for (auto& c : r.choices) {
      Update& u = c->pending;
      if (u.tokens.empty() && u.text.empty() && u.finish == FinishReason::None) continue;
      any = true;
      u.request = r.id;
      u.index = c->index;
      u.stats = u.finish != FinishReason::None ? &c->stats : nullptr;
      if (r.on_update) {
        try {
          r.on_update(u);
        } catch (const std::exception& e) {
          spdlog::error("request {}: its update handler failed: {}", r.id, e.what());
        }
      }
      u = Update{};
    }
    it = r.open == 0 ? requests_.erase(it) : std::next(it);
  }
  return any || !requests_.empty();
}

void Engine::run() {
  while (step()) {
  }
}

EngineCounters Engine::counters() const {
  EngineCounters c = counters_;
  const BlockManager& b = line_.kv().blocks();
  c.preemptions = sched_.preemptions();
  c.prefix_queried_tokens = b.prefix_stats().queried_tokens;
  c.prefix_hit_tokens = b.prefix_stats().hit_tokens;
  c.running = static_cast<int64_t>(sched_.running());
  c.waiting = static_cast<int64_t>(sched_.waiting());
  c.kv_usage = b.n_blocks() ? static_cast<double>(b.held_blocks()) / static_cast<double>(b.n_blocks()) : 0.0;
  return c;
}

}  // namespace semline
