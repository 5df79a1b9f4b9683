// The block manager alone: reference counts, prefix keys, the LRU of idle cached blocks, windows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/engine/block_manager.h"

using namespace semline;

namespace {

std::vector<int32_t> iota_tokens(int32_t n, int32_t from = 100) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), from);
  return v;
}

// A sequence that computed all of `tokens`.
int32_t computed(BlockManager& b, const std::vector<int32_t>& tokens) {
  const int32_t s = b.new_sequence();
  const int32_t cached = b.attach_prefix(s, tokens);
  REQUIRE(b.try_reserve(s, static_cast<int32_t>(tokens.size()) - cached));
  b.advance(s, std::span<const int32_t>(tokens).subspan(static_cast<size_t>(cached)));
  return s;
}

std::vector<int32_t> table(const BlockManager& b, int32_t seq) {
  const SeqView v = b.view(seq);
  return std::vector<int32_t>(v.blocks, v.blocks + v.n_blocks);
}

}  // namespace

TEST_CASE("blocks are counted: shared full blocks of a common prefix, released to the cache, then to the pool") {
  BlockManager b({4, 16, 0, true});
  const std::vector<int32_t> prompt = iota_tokens(10);  // 2 full blocks and 2 tokens
  const int32_t a = computed(b, prompt);
  CHECK(table(b, a).size() == 3);
  CHECK(b.cached_blocks() == 2);  // the partial block has no key
  CHECK(b.held_blocks() == 3);

  // The same prompt: both full blocks are taken, the partial one is computed again.
  const int32_t c = b.new_sequence();
  CHECK(b.attach_prefix(c, prompt) == 8);
  CHECK(b.n_past(c) == 8);
  const auto ta = table(b, a), tc = table(b, c);
  CHECK(std::vector<int32_t>(ta.begin(), ta.begin() + 2) == tc);
  CHECK(b.refs(ta[0]) == 2);
  CHECK(b.refs(ta[1]) == 2);
  CHECK(b.prefix_stats().queried_tokens == 20);
  CHECK(b.prefix_stats().hit_tokens == 8);

  b.free_sequence(a);
  CHECK(b.refs(ta[0]) == 1);
  CHECK(b.refs(ta[2]) == 0);  // a's partial block is free again
  b.free_sequence(c);
  CHECK(b.held_blocks() == 0);
  CHECK(b.cached_blocks() == 2);  // idle but still cached
  CHECK(b.available_blocks() == 16);

  // A prompt of exactly two blocks leaves its last token to compute: one block is taken.
  const int32_t d = b.new_sequence();
  CHECK(b.attach_prefix(d, iota_tokens(8)) == 4);
}

TEST_CASE("a prefix key covers every earlier block: the same block after another prefix is not reused") {
  BlockManager b({4, 16, 0, true});
  std::vector<int32_t> first = iota_tokens(12);
  computed(b, first);
  std::vector<int32_t> other = first;
  other[1] = 7;  // the first block differs, the next ones are the same tokens
  const int32_t s = b.new_sequence();
  CHECK(b.attach_prefix(s, other) == 0);
  std::vector<int32_t> longer = first;
  longer.insert(longer.end(), {1, 2, 3});
  const int32_t t = b.new_sequence();
  CHECK(b.attach_prefix(t, longer) == 12);
  std::vector<int32_t> diverging = first;
  diverging[9] = 0;  // the third block differs
  const int32_t u = b.new_sequence();
  CHECK(b.attach_prefix(u, diverging) == 8);
}

TEST_CASE("idle cached blocks are evicted least recently used first, and only when the free list is empty") {
  BlockManager b({2, 6, 0, true});
  const auto p1 = iota_tokens(4, 10), p2 = iota_tokens(4, 20), p3 = iota_tokens(4, 30);
  b.free_sequence(computed(b, p1));  // 2 blocks cached, idle
  b.free_sequence(computed(b, p2));
  CHECK(b.cached_blocks() == 4);
  // p1 is used again: it becomes the most recently used.
  const int32_t again = b.new_sequence();
  CHECK(b.attach_prefix(again, iota_tokens(5, 10)) == 4);
  b.free_sequence(again);
  // Two free blocks are taken first; then p2's blocks, the least recently used, go.
  const int32_t big = b.new_sequence();
  REQUIRE(b.try_reserve(big, 4));
  CHECK(b.cached_blocks() == 4);
  REQUIRE(b.try_reserve(big, 8));  // 4 blocks in all: 2 more
  CHECK(b.cached_blocks() == 2);
  b.free_sequence(big);
  const int32_t s1 = b.new_sequence(), s2 = b.new_sequence();
  CHECK(b.attach_prefix(s1, iota_tokens(5, 10)) == 4);  // p1 survived
  CHECK(b.attach_prefix(s2, iota_tokens(5, 20)) == 0);  // p2 was evicted
  (void)p3;
}

TEST_CASE("a reservation the pool cannot hold takes nothing, a window releases blocks out of reach") {
  BlockManager b({4, 4, 0, true});
  const int32_t s = b.new_sequence();
  REQUIRE(b.try_reserve(s, 12));
  CHECK_FALSE(b.try_reserve(s, 24));  // 6 blocks: 3 more of the 1 left
  CHECK(b.view(s).n_blocks == 3);
  CHECK(b.available_blocks() == 1);
  CHECK_THROWS_WITH(b.advance(s, iota_tokens(13)), Catch::Contains("advanced past the blocks reserved"));

  BlockManager w({4, 8, 6, false});  // every layer reads the last 6 positions
  const int32_t t = w.new_sequence();
  REQUIRE(w.try_reserve(t, 16));
  w.advance(t, iota_tokens(16));
  // The next query at 16 reads 11..16: blocks 0 and 1 (positions 0..7) are out of reach.
  CHECK(table(w, t) == std::vector<int32_t>{-1, -1, table(w, t)[2], table(w, t)[3]});
  CHECK(w.held_blocks() == 2);
  CHECK(w.cached_blocks() == 0);  // prefix caching off
}

TEST_CASE("trim gives back the blocks reserved past what a sequence kept (rejected drafts)") {
  BlockManager b({4, 8, 0, true});
  const int32_t s = b.new_sequence();
  REQUIRE(b.try_reserve(s, 5));
  b.advance(s, iota_tokens(5));
  // A step reserves for the last token and 8 drafts (positions 5..13: blocks 1..3), keeps 2.
  REQUIRE(b.try_reserve(s, 9));
  CHECK(b.view(s).n_blocks == 4);
  b.advance(s, iota_tokens(3, 105));
  b.trim(s);
  CHECK(b.n_past(s) == 8);
  CHECK(b.view(s).n_blocks == 2);  // positions 0..7
  CHECK(b.held_blocks() == 2);
  CHECK(b.cached_blocks() == 2);   // both full, keyed from kept tokens only
  // Nothing to give back: unchanged.
  b.trim(s);
  CHECK(b.view(s).n_blocks == 2);
  b.free_sequence(s);
  CHECK(b.held_blocks() == 0);
}

TEST_CASE("truncate rolls a sequence back: blocks past the cut go back, keys follow the kept tokens") {
  BlockManager b({4, 8, 0, true});
  const std::vector<int32_t> drafted = iota_tokens(10);  // positions 0..9: blocks 0, 1 full and keyed, 2 partial
  const int32_t s = computed(b, drafted);
  CHECK(b.cached_blocks() == 2);
  // Cut inside the partial block: n_past 9, the three blocks stay.
  CHECK(b.truncate(s, std::span<const int32_t>(drafted).first(9)) == 9);
  CHECK(b.view(s).n_blocks == 3);
  // The sequence goes on with other tokens; the block it fills is keyed by what it now holds.
  std::vector<int32_t> other(drafted.begin(), drafted.begin() + 9);
  for (int32_t t : {500, 501, 502}) other.push_back(t);
  REQUIRE(b.try_reserve(s, 3));
  b.advance(s, std::span<const int32_t>(other).subspan(9));
  CHECK(b.cached_blocks() == 3);
  const int32_t again = b.new_sequence();
  std::vector<int32_t> longer = other;
  longer.push_back(503);
  CHECK(b.attach_prefix(again, longer) == 12);
  b.free_sequence(again);
  // A cut inside a cached block another sequence holds goes down to its start: the sequence writes
  // only into blocks of its own.
  const int32_t sharer = b.new_sequence();
  REQUIRE(b.attach_prefix(sharer, longer) == 12);
  CHECK(b.truncate(s, std::span<const int32_t>(other).first(10)) == 8);
  CHECK(b.view(s).n_blocks == 2);
  CHECK(b.cached_blocks() == 3);
  b.free_sequence(sharer);
  // Inside a cached block it holds alone, the cut holds, and the block is no longer cached.
  CHECK(b.truncate(s, std::span<const int32_t>(other).first(6)) == 6);
  CHECK(b.view(s).n_blocks == 2);
  CHECK(b.n_past(s) == 6);
  CHECK(b.cached_blocks() == 2);  // block 1 dropped out; block 2 idle, still cached
  // Beyond n_past: refused.
  CHECK_THROWS(b.truncate(s, other));
  b.free_sequence(s);
  CHECK(b.held_blocks() == 0);
}

TEST_CASE("truncate behind a window that released positions starts the sequence over") {
  BlockManager w({4, 8, 6, false});
  const int32_t t = w.new_sequence();
  REQUIRE(w.try_reserve(t, 16));
  const std::vector<int32_t> tokens = iota_tokens(16);
  w.advance(t, tokens);
  REQUIRE(w.held_blocks() == 2);
  // The query at 15 reads 10..15: still there, the cut holds.
  CHECK(w.truncate(t, std::span<const int32_t>(tokens).first(15)) == 15);
  // The query at 9 would read 4..9, of which block 1 (4..7) was released.
  CHECK(w.truncate(t, std::span<const int32_t>(tokens).first(9)) == 0);
  CHECK(w.view(t).n_blocks == 0);
  CHECK(w.held_blocks() == 0);
  REQUIRE(w.try_reserve(t, 16));
  w.advance(t, tokens);
  CHECK(w.n_past(t) == 16);
}

TEST_CASE("a prefix hook attaches only as far as it accepts: the state at a prefix's end (recurrent lines)") {
  BlockManager b({4, 16, 0, true});
  const std::vector<int32_t> prompt = iota_tokens(14);  // 3 full blocks and 2 tokens
  const int32_t a = computed(b, prompt);
  CHECK(b.prefix_key(a) == 0);  // 14 tokens end inside a block
  const int32_t twelve = b.new_sequence();
  REQUIRE(b.attach_prefix(twelve, std::vector<int32_t>(prompt.begin(), prompt.begin() + 13)) == 12);
  const uint64_t key12 = b.prefix_key(twelve);
  CHECK(key12 != 0);
  b.free_sequence(twelve);

  // The hook saw the ends longest first and took the one with a state: 8 tokens.
  std::vector<std::pair<uint64_t, int32_t>> asked;
  uint64_t key8 = 0;
  b.set_prefix_hook([&](int32_t, uint64_t key, int32_t n) {
    asked.emplace_back(key, n);
    if (n == 8) key8 = key;
    return n == 8;
  });
  const int64_t hits = b.prefix_stats().hit_tokens;
  const int32_t c = b.new_sequence();
  CHECK(b.attach_prefix(c, prompt) == 8);
  REQUIRE(asked.size() == 2);
  CHECK(asked[0] == std::make_pair(key12, 12));
  CHECK(asked[1].second == 8);
  CHECK(b.prefix_key(c) == key8);
  CHECK(table(b, c).size() == 2);  // the third cached block is not held
  CHECK(b.refs(table(b, a)[2]) == 1);
  CHECK(b.prefix_stats().hit_tokens == hits + 8);

  // A hook that accepts nothing: the sequence starts at 0 and holds nothing.
  b.set_prefix_hook([](int32_t, uint64_t, int32_t) { return false; });
  const int32_t d = b.new_sequence();
  CHECK(b.attach_prefix(d, prompt) == 0);
  CHECK(table(b, d).empty());
  CHECK(b.prefix_key(d) == 0);
}

TEST_CASE("a sequence's blocks follow one another in the pool while the next one is free") {
  BlockManager b({.block_tokens = 4, .n_blocks = 64, .window = 0, .prefix_caching = true});
  // Four sequences started together, then growing a block at a time in turn, as a batch of
  // decodes does: each one's blocks stay consecutive.
  std::vector<int32_t> seqs;
  for (int i = 0; i < 4; ++i) {
    seqs.push_back(b.new_sequence());
    REQUIRE(b.try_reserve(seqs.back(), 4));
  }
  for (int step = 0; step < 6; ++step)
    for (int32_t s : seqs) {
      b.advance(s, iota_tokens(4, 1000 * s + 4 * step));
      REQUIRE(b.try_reserve(s, 4));
    }
  std::vector<int32_t> starts;
  for (int32_t s : seqs) {
    const std::vector<int32_t> t = table(b, s);
    REQUIRE(t.size() == 7);
    for (size_t i = 1; i < t.size(); ++i) REQUIRE(t[i] == t[i - 1] + 1);
    starts.push_back(t[0]);
  }
  // The first starts the pool; each later one the middle of the longest free run then.
  CHECK(starts == std::vector<int32_t>{0, 32, 16, 48});

  // A sequence whose next block is held goes on in the middle of the longest free run.
  const int32_t next_of_first = table(b, seqs[0]).back() + 1;  // 7: free
  const int32_t blocker = b.new_sequence();
  REQUIRE(b.try_reserve(blocker, 1));  // the middle of [7, 16): 11
  CHECK(table(b, blocker) == std::vector<int32_t>{11});
  b.advance(seqs[0], iota_tokens(4, 50));
  REQUIRE(b.try_reserve(seqs[0], 20));  // blocks 7..10, then the middle of [23, 32), the first longest
  const std::vector<int32_t> t = table(b, seqs[0]);
  CHECK(std::vector<int32_t>(t.begin() + 7, t.end()) == std::vector<int32_t>{next_of_first, 8, 9, 10, 27});

  // Every block can still be handed out, each once.
  for (int32_t s : seqs) b.free_sequence(s);
  b.free_sequence(blocker);
  std::vector<int32_t> taken;
  const int32_t all = b.new_sequence();
  REQUIRE(b.try_reserve(all, 4 * static_cast<int32_t>(b.available_blocks())));
  taken = table(b, all);
  std::sort(taken.begin(), taken.end());
  CHECK(std::adjacent_find(taken.begin(), taken.end()) == taken.end());
  CHECK(b.available_blocks() == 0);
}
