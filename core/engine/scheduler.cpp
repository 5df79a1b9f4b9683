#include "core/engine/scheduler.h"

#include <algorithm>
#include <span>

#include <semline/error.h>

namespace semline {

Scheduler::Scheduler(BlockManager& blocks, const SchedulerOptions& opt) : blocks_(blocks), opt_(opt) {
  if (opt.max_batch_tokens < 1 || opt.max_seqs < 1) throw Error("scheduler: max_batch_tokens and max_seqs must be >= 1");
}

void Scheduler::add(SchedSeq* s) { waiting_.push_back(s); }

void Scheduler::remove(SchedSeq* s) {
  std::erase(running_, s);
  std::erase(waiting_, s);
  if (s->kv >= 0) blocks_.free_sequence(s->kv);
  s->kv = -1;
}

bool Scheduler::fits_alone(const SchedSeq* s, int32_t n_tokens) const {
  if (blocks_.window() > 0) return true;  // a windowed sequence holds a bounded share
  const int64_t bt = blocks_.block_tokens();
  return (static_cast<int64_t>(n_tokens) + bt - 1) / bt <= blocks_.n_blocks();
}

void Scheduler::fail(SchedSeq* s, std::string why, StepPlan& plan) {
  std::erase_if(plan.items, [&](const StepItem& it) {
    if (it.seq != s) return false;
    plan.tokens -= it.n;
    return true;
  });
  remove(s);
  plan.failed.emplace_back(s, std::move(why));
}

void Scheduler::preempt(SchedSeq* s, StepPlan& plan) {
  std::erase_if(plan.items, [&](const StepItem& it) {
    if (it.seq != s) return false;
    plan.tokens -= it.n;
    return true;
  });
  std::erase(running_, s);
  blocks_.free_sequence(s->kv);
  s->kv = -1;
  s->n_computed = 0;  // recomputed on readmission, from whatever of its prefix is still cached
  waiting_.push_front(s);
  plan.preempted.push_back(s);
  ++preemptions_;
}

// Blocks for n more tokens of a running sequence, preempting the most recently admitted running
// sequences (s itself, if it is the most recent) until they fit.
bool Scheduler::reserve(SchedSeq* s, int32_t n, StepPlan& plan) {
  while (!blocks_.try_reserve(s->kv, n)) {
    // Only a sequence no step in flight holds can give its blocks back.
    std::vector<SchedSeq*> idle;
    for (SchedSeq* r : running_)
      if (!r->in_flight) idle.push_back(r);
    if (idle.size() == 1 && running_.size() > 1) return false;  // waits for the steps in flight
    if (idle.size() == 1) {
      fail(s, "the sequence has grown to " + std::to_string(s->tokens.size()) + " tokens and the KV cache pool (" +
                  std::to_string(blocks_.n_blocks()) + " blocks of " + std::to_string(blocks_.block_tokens()) +
                  ") holds no more, even with nothing else running (set kv_cache.size_mib or kv_cache.blocks)",
           plan);
      return false;
    }
    SchedSeq* victim = *std::max_element(idle.begin(), idle.end(),
                                         [](const SchedSeq* a, const SchedSeq* b) { return a->admitted < b->admitted; });
    preempt(victim, plan);
    if (victim == s) return false;
  }
  return true;
}

bool Scheduler::admit(SchedSeq* s, StepPlan& plan) {
  const int32_t n_tokens = static_cast<int32_t>(s->tokens.size());
  if (!fits_alone(s, n_tokens)) {
    std::erase(waiting_, s);
    plan.failed.emplace_back(s, "the prompt of " + std::to_string(n_tokens) + " tokens needs more than the " +
                                    std::to_string(blocks_.n_blocks()) + " blocks of " +
                                    std::to_string(blocks_.block_tokens()) +
                                    " positions the KV cache pool holds (set kv_cache.size_mib or kv_cache.blocks)");
    return true;  // the next waiting sequence may still fit
  }
  s->kv = blocks_.new_sequence();
  s->n_computed = blocks_.attach_prefix(s->kv, s->tokens);
  const int32_t n = s->chunk(opt_.max_batch_tokens - plan.tokens);
  if (!blocks_.try_reserve(s->kv, n)) {
    blocks_.free_sequence(s->kv);
    s->kv = -1;
    s->n_computed = 0;
    return false;  // waits for blocks to come back
  }
  std::erase(waiting_, s);
  s->admitted = next_order_++;
  running_.push_back(s);
  plan.items.push_back({s, n});
  plan.tokens += n;
  return true;
}

StepPlan Scheduler::plan(size_t max_items) {
  StepPlan plan;
  // Decodes first, then prompt chunks of sequences already running, oldest first.
  for (const bool decodes : {true, false}) {
    const std::vector<SchedSeq*> snapshot = running_;
    for (SchedSeq* s : snapshot) {
      if (plan.items.size() >= max_items) break;
      // Preempted meanwhile, in a step in flight, or for the other pass.
      if (s->kv < 0 || s->in_flight || s->decoding() != decodes) continue;
      const int32_t n = s->chunk(opt_.max_batch_tokens - plan.tokens);
      if (n <= 0) continue;
      if (!reserve(s, n, plan)) continue;
      plan.items.push_back({s, n});
      plan.tokens += n;
    }
  }
  // Then waiting sequences, in order, while there is room.
  while (running_.size() < static_cast<size_t>(opt_.max_seqs) && plan.tokens < opt_.max_batch_tokens &&
         plan.items.size() < max_items) {
    auto next = std::find_if(waiting_.begin(), waiting_.end(), [](const SchedSeq* s) { return !s->hold; });
    if (next == waiting_.end() || !admit(*next, plan)) break;
  }
  return plan;
}

void Scheduler::commit(const StepPlan& plan) {
  for (const StepItem& it : plan.items) {
    SchedSeq* s = it.seq;
    blocks_.advance(s->kv, std::span<const int32_t>(s->tokens).subspan(static_cast<size_t>(s->n_computed),
                                                                         static_cast<size_t>(it.n)));
    s->n_computed += it.n;
    blocks_.trim(s->kv);
  }
}

}  // namespace semline
