// The engine: many requests generated at once over one line. Requests arrive (from any thread),
// the scheduler forms each step from the running and waiting sequences, the line runs it as one
// batch, each sequence samples its next token with its own chain, and updates flow back to the
// request's callback. `semline run`, `semline bench` and the server all generate through it.
//
// A request has its prompt, sampling parameters, stop strings and limits, and asks for n choices:
// n sequences that share the prompt's cached blocks (the first computes them; the others are
// admitted once it has, and take them from the prefix cache; on a line with recurrent layers the
// first stops at its prompt's last whole block to leave its state there too). A choice ends at the end-of-sequence
// token (unless ignore_eos), a stop string (not part of its text), max_tokens, or the context; a
// request can be cancelled at any step, which gives its blocks back at once.
//
// A line in pipeline stages holds two steps at once (Pipeline::depth): the engine forms a step from
// about half the sequences, submits it, forms the next from the others while the later stages
// compute the first, and lands the oldest; so every stage has work (micro-batches). A sequence is in
// at most one step in flight, and is neither preempted nor cancelled until that step has landed.
//
// With a proposer ([speculative]), a decoding choice carries drafts into the step: the model
// computes the last token and the drafts together, each position is sampled as plain decoding
// would sample it, and the drafts are kept up to the first one the sample disagrees with (see
// speculative.h); the cache keeps only what was kept.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/engine/pipeline.h"
#include "core/engine/sampling.h"
#include "core/engine/scheduler.h"
#include "core/engine/speculative.h"
#include "core/engine/text_stream.h"
#include "core/engine/workers.h"

namespace semline {

enum class FinishReason { None, Eos, StopString, Length, Cancelled, Error };
const char* finish_reason_name(FinishReason r);  // "eos", "stop string", "length", "cancelled", "error"

struct RequestOptions {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int32_t max_tokens = 128;        // generated tokens per choice at most (the context may stop it
                                   // sooner); -1: up to the context
  std::vector<std::string> stop;   // stop strings
  std::vector<int32_t> stop_tokens;  // tokens that end a choice as the end-of-sequence token does
                                     // (a chat template's end of turn); not part of the text
  bool ignore_eos = false;
  int32_t n = 1;                   // choices
  int32_t logprobs = -1;           // -1: none; k >= 0: each token's log-probability and the k most likely
};

// A token's log-probability under the model's distribution (before any sampler), and the most
// likely tokens at that position.
struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;
};

using Clock = std::chrono::steady_clock;

// What one choice took, on its last update.
struct ChoiceStats {
  int32_t n_prompt = 0;
  int32_t n_cached = 0;  // prompt tokens found in the prefix cache on first admission
  int32_t n_generated = 0;
  int32_t preemptions = 0;
  int32_t draft_steps = 0;      // speculative decoding: steps that verified drafts
  int32_t draft_tokens = 0;     // tokens drafted and verified
  int32_t accepted_tokens = 0;  // drafts the model agreed with
  Clock::time_point arrival, scheduled, first_token, finished;
};

// One choice's progress after a step.
struct Update {
  uint64_t request = 0;
  int32_t index = 0;                 // the choice
  std::vector<int32_t> tokens;       // tokens generated this step
  std::string text;                  // text now safe to show (whole characters, no stop string)
  std::vector<TokenLogprob> logprobs;  // one per token, when asked
  FinishReason finish = FinishReason::None;  // set on the choice's last update
  std::string error;                 // why, for FinishReason::Error
  const ChoiceStats* stats = nullptr;  // on the last update
};
using UpdateFn = std::function<void(const Update&)>;

struct EngineOptions {
  int32_t max_seqs = 16;  // sequences running at once; runtime.max_seqs
  int threads = 1;        // host threads that sample a step's rows; runtime.threads (0: every core)
  SpeculativeOptions speculative;  // [speculative]
};

// runtime.max_seqs and [speculative] of a config; `draft` is the draft line load_draft made for it.
EngineOptions engine_options(const Config& config, Pipeline* draft = nullptr);

// Running totals, for the meters.
struct EngineCounters {
  int64_t steps = 0;
  int64_t overlapped_steps = 0;   // submitted while another step was in flight (micro-batches)
  int64_t prompt_tokens = 0;      // prompt tokens computed (prefix-cache hits not counted)
  int64_t generation_tokens = 0;
  int64_t preemptions = 0;
  int64_t prefix_queried_tokens = 0, prefix_hit_tokens = 0;
  int64_t spec_drafts = 0;           // steps of a sequence that verified drafts
  int64_t spec_draft_tokens = 0;     // drafted tokens verified
  int64_t spec_accepted_tokens = 0;  // of which the model agreed with
  int64_t spec_proposer_errors = 0;  // calls into the proposer that threw (their steps had no drafts)
  int64_t running = 0, waiting = 0;
  double kv_usage = 0;            // share of the pool's blocks held by sequences, 0..1
};

class Engine {
 public:
  // The line's registry supplies the samplers.
  explicit Engine(Pipeline& line, const EngineOptions& opt = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Checks the request (one semline::Error naming what is wrong: an empty prompt, one longer
  // than the context, a bad sampling value...), makes its samplers and queues it; returns its id.
  // Thread-safe; updates arrive on the thread that calls step().
  uint64_t submit(RequestOptions request, UpdateFn on_update);
  // Ends a request at the next step: its choices' last updates say Cancelled. Thread-safe.
  void cancel(uint64_t request);
  // Runs one step: false when there was nothing to do. Steps, run(), busy() and counters() belong
  // to one thread, the engine's.
  bool step();
  // Steps until every request has finished.
  void run();
  bool busy() const;

  EngineCounters counters() const;
  Pipeline& line() { return line_; }
  const SamplerFactory& samplers() const { return samplers_; }

 private:
  struct Request;
  struct Choice;
  void take_inbox();
  void finish(Choice& c, FinishReason why, std::string error = {});
  struct Output;
  void propose();
  void proposer_failed(const std::string& why);
  TokenLogprob logprob(std::span<const float> logits, int32_t token, int32_t top) const;
  int32_t verify(Output& o, std::span<const float> logits, Candidates& cand);
  void accept(Choice& c, int32_t token);
  void release_siblings();
  void keep_states(const StepPlan& plan);
  struct Flight;
  size_t share() const;
  bool launch();
  void land();
  void fail_step(Flight& f, const std::string& why);

  Pipeline& line_;
  SamplerFactory samplers_;
  EngineOptions opt_;
  Scheduler sched_;

  mutable std::mutex inbox_mutex_;
  std::vector<std::unique_ptr<Request>> inbox_;
  std::vector<uint64_t> cancels_;
  uint64_t next_id_ = 1;

  std::list<std::unique_ptr<Request>> requests_;  // admitted to the engine, not finished
  EngineCounters counters_;
  std::deque<std::unique_ptr<Flight>> flights_;  // submitted to the line, oldest first
  std::unique_ptr<Flight> spare_;                // a landed step's, kept for its arrays
  // The threads that sample a step's rows, and each one's working set for the chains, made anew
  // for every row: one per thread, not per choice, so that it stays in that core's cache.
  Workers workers_;
  std::vector<Candidates> cands_;
  std::unique_ptr<Proposer> proposer_;  // nullptr: no drafts
  std::vector<DraftRequest> drafts_;
  std::vector<Choice*> drafting_;
  std::atomic<uint64_t> next_choice_{1};  // submit() runs on any thread
};

}  // namespace semline
