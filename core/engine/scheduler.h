// Continuous batching: which tokens of which sequences the next step computes.
//
// Every step is formed anew from the running and the waiting sequences under two budgets, the
// tokens a step may carry (runtime.max_batch_tokens) and the sequences that may run at once
// (runtime.max_seqs): running sequences that decode come first (one token each), then running
// sequences still reading their prompt (chunked prefill: a long prompt takes what the budget
// leaves, over as many steps as it needs, so it never stalls the streams already running), then
// waiting sequences in arrival order, each taking the longest cached prefix of its tokens first.
// When the pool runs out of blocks, the most recently admitted running sequence gives its blocks
// back and waits again at the front, to be recomputed later (its full blocks usually stay cached);
// a sequence that cannot fit even alone is failed rather than waiting for ever.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "core/engine/block_manager.h"

namespace semline {

// What the scheduler knows of a sequence; the engine keeps the rest.
struct SchedSeq {
  std::vector<int32_t> tokens;  // every known token: prompt, then the generated ones
  int32_t n_computed = 0;       // tokens whose keys and values are in the cache
  int32_t kv = -1;              // the BlockManager sequence while admitted
  uint64_t admitted = 0;        // admission order (later admitted: preempted first)
  bool hold = false;            // not to be admitted yet (a sibling waiting for its prompt's blocks)
  int32_t n_draft = 0;          // the last n_draft tokens are drafts, to be verified this step
  bool in_flight = false;       // a step that computes it has not come back yet (micro-batches)
  int32_t pause_at = 0;         // a step's chunk ends here, if it would pass it: a recurrent line
                                // saves the state at its prompt's last whole block
  bool decoding() const {
    return n_computed > 0 && n_computed + 1 + n_draft >= static_cast<int32_t>(tokens.size());
  }
  // The tokens a step may compute of it: all it lacks, up to pause_at, within the budget.
  int32_t chunk(int32_t budget) const {
    int32_t n = static_cast<int32_t>(tokens.size()) - n_computed;
    if (pause_at > n_computed) n = std::min(n, pause_at - n_computed);
    return std::min(n, budget);
  }
};

struct StepItem {
  SchedSeq* seq;
  int32_t n;  // tokens of seq->tokens computed this step, from seq->n_computed (the engine
              // lowers it to what verification kept before commit)
  bool output() const { return seq->n_computed + n == static_cast<int32_t>(seq->tokens.size()); }
};

struct StepPlan {
  std::vector<StepItem> items;         // in batch order
  std::vector<SchedSeq*> preempted;    // gave their blocks back this step (now waiting)
  std::vector<std::pair<SchedSeq*, std::string>> failed;  // can never fit; removed, with the reason
  int32_t tokens = 0;
};

struct SchedulerOptions {
  int32_t max_batch_tokens = 512;
  int32_t max_seqs = 16;
};

class Scheduler {
 public:
  Scheduler(BlockManager& blocks, const SchedulerOptions& opt);

  void add(SchedSeq* s);     // waits for admission
  void remove(SchedSeq* s);  // finished or cancelled: leaves the queues, its blocks go back
  // Reserves the blocks the plan's tokens need. Sequences a step in flight holds are left out,
  // and at most max_items sequences are taken (micro-batches share the running ones out).
  StepPlan plan(size_t max_items = SIZE_MAX);
  // After the step ran: the items' tokens are computed (and cached); blocks reserved past them
  // (for drafts the model rejected) go back.
  void commit(const StepPlan& plan);

  size_t running() const { return running_.size(); }
  size_t waiting() const { return waiting_.size(); }
  int64_t preemptions() const { return preemptions_; }

 private:
  bool reserve(SchedSeq* s, int32_t n, StepPlan& plan);
  void preempt(SchedSeq* s, StepPlan& plan);
  void fail(SchedSeq* s, std::string why, StepPlan& plan);
  bool admit(SchedSeq* s, StepPlan& plan);
  bool fits_alone(const SchedSeq* s, int32_t n_tokens) const;

  BlockManager& blocks_;
  SchedulerOptions opt_;
  std::vector<SchedSeq*> running_;  // admission order
  std::deque<SchedSeq*> waiting_;
  uint64_t next_order_ = 1;
  int64_t preemptions_ = 0;
};

}  // namespace semline
