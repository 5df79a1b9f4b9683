// The scheduler alone, over a block manager: what each step holds, chunked prefill, admission by
// budget and by sequence count, prefix reuse, preemption and what never fits.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "core/engine/scheduler.h"

using namespace semline;

namespace {

SchedSeq seq_of(int32_t n, int32_t from = 100) {
  SchedSeq s;
  s.tokens.resize(static_cast<size_t>(n));
  std::iota(s.tokens.begin(), s.tokens.end(), from);
  return s;
}

// (sequence, tokens) of each item, in batch order.
std::vector<std::pair<const SchedSeq*, int32_t>> items(const StepPlan& p) {
  std::vector<std::pair<const SchedSeq*, int32_t>> out;
  for (const StepItem& it : p.items) out.emplace_back(it.seq, it.n);
  return out;
}

// The step ran: each sequence that finished its known tokens gains one generated token.
void ran(Scheduler& s, const StepPlan& p, int32_t next = 7) {
  std::vector<SchedSeq*> grow;
  for (const StepItem& it : p.items)
    if (it.output()) grow.push_back(it.seq);
  s.commit(p);
  for (SchedSeq* q : grow) q->tokens.push_back(next);
}

}  // namespace

TEST_CASE("a step: decodes first, then prompt chunks under the token budget, the rest wait") {
  BlockManager blocks({4, 64, 0, true});
  Scheduler sched(blocks, {8, 4});
  SchedSeq a = seq_of(3), b = seq_of(20, 200), c = seq_of(5, 300);
  sched.add(&a);
  sched.add(&b);
  StepPlan p1 = sched.plan();
  // a's whole prompt (3), then 5 of b's 20: the budget of 8 is spent.
  CHECK(items(p1) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 3}, {&b, 5}});
  CHECK(p1.items[0].output());
  CHECK_FALSE(p1.items[1].output());
  ran(sched, p1);
  sched.add(&c);
  StepPlan p2 = sched.plan();
  // a decodes (1), b's prompt goes on (7): c waits for room.
  CHECK(items(p2) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 1}, {&b, 7}});
  ran(sched, p2);
  StepPlan p3 = sched.plan();
  CHECK(items(p3) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 1}, {&b, 7}});
  ran(sched, p3);
  StepPlan p4 = sched.plan();  // b's last prompt token, then c starts
  CHECK(items(p4) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 1}, {&b, 1}, {&c, 5}});
  CHECK(sched.running() == 3);
  CHECK(sched.waiting() == 0);
}

TEST_CASE("at most max_seqs run, a newcomer takes its cached prefix, a held sequence waits its turn") {
  BlockManager blocks({4, 64, 0, true});
  Scheduler sched(blocks, {64, 2});
  SchedSeq a = seq_of(9), b = seq_of(9), c = seq_of(2, 500);
  b.hold = true;
  sched.add(&a);
  sched.add(&b);
  sched.add(&c);
  StepPlan p1 = sched.plan();  // b is held: c goes past it
  CHECK(items(p1) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 9}, {&c, 2}});
  ran(sched, p1);
  b.hold = false;
  sched.remove(&c);
  StepPlan p2 = sched.plan();
  // b finds a's two full blocks (8 tokens) in the cache and computes only its last token.
  CHECK(items(p2) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 1}, {&b, 1}});
  CHECK(b.n_computed == 8);
  CHECK(blocks.prefix_stats().hit_tokens == 8);
}

TEST_CASE("when blocks run out the most recently admitted gives them back and is recomputed later") {
  // 6 blocks of 4: three prompts of 8 tokens hold 2 full blocks each and fill the pool.
  BlockManager blocks({4, 6, 0, true});
  Scheduler sched(blocks, {64, 8});
  SchedSeq a = seq_of(8, 100), b = seq_of(8, 200), c = seq_of(8, 300);
  for (SchedSeq* s : {&a, &b, &c}) sched.add(s);
  StepPlan p1 = sched.plan();
  REQUIRE(p1.items.size() == 3);
  ran(sched, p1);  // each has a 9th token now, which needs a third block: none is free
  StepPlan p2 = sched.plan();
  // c, admitted last, gives its two blocks back; a and b take one each.
  CHECK(p2.preempted == std::vector<SchedSeq*>{&c});
  CHECK(items(p2) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 1}, {&b, 1}});
  CHECK(c.kv == -1);
  CHECK(c.n_computed == 0);
  CHECK(sched.waiting() == 1);
  CHECK(sched.preemptions() == 1);
  CHECK(blocks.available_blocks() == 0);
  ran(sched, p2);
  // a finishes: c comes back and computes all its 9 tokens again.
  sched.remove(&a);
  StepPlan p3 = sched.plan();
  CHECK(items(p3) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&b, 1}, {&c, 9}});
  CHECK(sched.running() == 2);
}

TEST_CASE("what cannot fit even alone is failed with the reason, what fits alone never is") {
  BlockManager blocks({4, 3, 0, true});  // 12 positions in all
  Scheduler sched(blocks, {64, 4});
  SchedSeq huge = seq_of(13), fits = seq_of(12);
  sched.add(&huge);
  sched.add(&fits);
  StepPlan p1 = sched.plan();
  REQUIRE(p1.failed.size() == 1);
  CHECK(p1.failed[0].first == &huge);
  CHECK_THAT(p1.failed[0].second, Catch::Contains("the prompt of 13 tokens needs more than the 3 blocks of 4 positions"));
  CHECK(items(p1) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&fits, 12}});
  ran(sched, p1);  // its 13th token needs a fourth block
  StepPlan p2 = sched.plan();
  REQUIRE(p2.failed.size() == 1);
  CHECK(p2.failed[0].first == &fits);
  CHECK_THAT(p2.failed[0].second, Catch::Contains("even with nothing else running"));
  CHECK(blocks.held_blocks() == 0);
}

TEST_CASE("micro-batches: a plan takes at most max_items, leaves sequences in flight out and never preempts them") {
  BlockManager blocks({4, 6, 0, true});
  Scheduler sched(blocks, {64, 8});
  SchedSeq a = seq_of(8, 100), b = seq_of(8, 200), c = seq_of(8, 300);
  for (SchedSeq* s : {&a, &b, &c}) sched.add(s);
  StepPlan first = sched.plan(2);
  CHECK(items(first) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 8}, {&b, 8}});
  a.in_flight = b.in_flight = true;
  StepPlan second = sched.plan(2);  // a and b are in flight: c alone
  CHECK(items(second) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&c, 8}});
  c.in_flight = true;
  CHECK(sched.plan().items.empty());
  // The first lands; c is still in flight. a and b each need a third block and none is free:
  // b, the most recent of those not in flight, gives its blocks back (c, admitted later, keeps them).
  a.in_flight = b.in_flight = false;
  ran(sched, first);
  StepPlan third = sched.plan();
  CHECK(third.preempted == std::vector<SchedSeq*>{&b});
  CHECK(items(third) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 1}});
  CHECK(c.kv >= 0);
}

TEST_CASE("micro-batches: a sequence short of blocks waits for the step in flight rather than failing") {
  BlockManager blocks({4, 4, 0, true});  // two prompts of 8 fill the pool
  Scheduler sched(blocks, {64, 8});
  SchedSeq a = seq_of(8, 100), b = seq_of(8, 200);
  sched.add(&a);
  sched.add(&b);
  StepPlan first = sched.plan(1);
  a.in_flight = true;
  StepPlan second = sched.plan(1);
  CHECK(items(second) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&b, 8}});
  b.in_flight = true;
  a.in_flight = false;
  ran(sched, first);  // a's 9th token needs a block: only b, in flight, holds any
  StepPlan waits = sched.plan();
  CHECK(items(waits).empty());
  CHECK(waits.failed.empty());
  CHECK(waits.preempted.empty());
  b.in_flight = false;
  ran(sched, second);  // b has landed: now it can give its blocks back
  StepPlan third = sched.plan();
  CHECK(third.preempted == std::vector<SchedSeq*>{&b});
  CHECK(items(third) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 1}});
}

TEST_CASE("a prompt chunk stops at the sequence's pause point (a recurrent line saves its state there)") {
  BlockManager blocks({4, 64, 0, true});
  Scheduler sched(blocks, {64, 4});
  SchedSeq a = seq_of(11);
  a.pause_at = 8;
  sched.add(&a);
  StepPlan p1 = sched.plan();
  CHECK(items(p1) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 8}});
  ran(sched, p1);
  StepPlan p2 = sched.plan();
  CHECK(items(p2) == std::vector<std::pair<const SchedSeq*, int32_t>>{{&a, 3}});
}
