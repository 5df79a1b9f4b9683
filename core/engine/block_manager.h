// Which cache block holds which positions of which sequence: the bookkeeping of the paged KV
// cache, apart from its memory (KvCache) and from who runs what (Scheduler).
//
// Blocks are reference-counted. A block that fills up with computed tokens gets a key, the hash
// of its parent block's key and its own tokens, so the key names the whole prefix up to its end
// (automatic prefix caching): a new sequence whose tokens start with a cached prefix takes those
// blocks instead of computing them again. A cached block nobody holds stays cached, in least
// recently used order, and is evicted only when a block is needed and no plain free block is left.
// Only full blocks are shared, and a sequence writes only into blocks of its own, so no block is
// ever copied. With a window (every layer reads only its last `window` positions) the blocks a
// sequence has left behind go back as it advances; its table keeps -1 there.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include <semline/stage.h>

namespace semline {

struct BlockManagerOptions {
  int32_t block_tokens = 16;
  int64_t n_blocks = 0;
  int32_t window = 0;          // 0: sequences keep every block
  bool prefix_caching = true;
};

// Counts for the meters: tokens looked up in the prefix cache and tokens found there.
struct PrefixCacheStats {
  int64_t queried_tokens = 0;
  int64_t hit_tokens = 0;
};

// A line whose layers keep a recurrent state (Mamba) can continue a cached prefix only from the
// state at its end: the hook puts back the state saved where the prefix of n_tokens ending in the
// block keyed `key` ends, into sequence seq's row, and says whether it had one.
using PrefixHook = std::function<bool(int32_t seq, uint64_t key, int32_t n_tokens)>;

class BlockManager {
 public:
  explicit BlockManager(const BlockManagerOptions& opt);
  // Set once by the line: from then on a prefix is attached only as far as the hook accepts.
  void set_prefix_hook(PrefixHook hook) { hook_ = std::move(hook); }

  int32_t new_sequence();
  // Drops the sequence's hold on its blocks; full ones stay cached for later sequences.
  void free_sequence(int32_t seq);

  // For a new sequence: takes the longest cached prefix of `tokens` (whole blocks, leaving at
  // least one token to compute, whose logits the caller wants) and returns how many tokens it
  // covers; the sequence's n_past starts there. With a prefix hook, the longest such prefix the
  // hook accepts. Counted in prefix_stats().
  int32_t attach_prefix(int32_t seq, std::span<const int32_t> tokens);
  // The key naming the sequence's computed tokens when they end on a cached block's end, else 0.
  uint64_t prefix_key(int32_t seq) const;

  // Blocks the sequence must add to hold n_tokens more.
  int64_t blocks_needed(int32_t seq, int32_t n_tokens) const;
  // Makes room for n_tokens more; false (and nothing taken) when the pool cannot.
  bool try_reserve(int32_t seq, int32_t n_tokens);
  // After a step computed `tokens` (the sequence's next tokens): n_past grows, newly full blocks
  // get their keys, and with a window the blocks out of reach are released.
  void advance(int32_t seq, std::span<const int32_t> tokens);

  // Gives back the blocks reserved past n_past (a step that wrote drafts the model rejected).
  void trim(int32_t seq);
  // Rolls the sequence back to its first `tokens.size()` positions, `tokens` being those tokens
  // (a draft model forgetting the drafts the target rejected): the blocks past them go back.
  // The sequence writes on only into a block no other sequence holds: a cached block the cut
  // falls inside stops being cached when the sequence holds it alone, and is given back (the cut
  // going down to its start) when others hold it too; behind a window, positions already released
  // cannot come back, and the cut goes down to 0. Returns the new n_past, to be computed on from
  // there.
  int32_t truncate(int32_t seq, std::span<const int32_t> tokens);

  SeqView view(int32_t seq) const;  // valid until the sequence's table changes
  int32_t n_past(int32_t seq) const;

  int64_t n_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  int64_t available_blocks() const;  // free plus cached blocks nobody holds
  int64_t held_blocks() const;       // held by at least one sequence
  int64_t cached_blocks() const { return static_cast<int64_t>(by_key_.size()); }
  int32_t refs(int32_t block) const { return blocks_.at(block).refs; }
  const PrefixCacheStats& prefix_stats() const { return stats_; }
  int32_t block_tokens() const { return opt_.block_tokens; }
  int32_t window() const { return opt_.window; }

 private:
  struct Block {
    int32_t refs = 0;
    bool keyed = false;
    uint64_t key = 0;
    std::vector<int32_t> tokens;        // a keyed block's tokens, to tell hash collisions apart
    std::list<int32_t>::iterator lru;   // in idle_ while keyed and unheld
  };
  struct Seq {
    bool live = false;
    int32_t n_past = 0;
    std::vector<int32_t> table;      // block per position range; -1 once released
    int32_t released = 0;            // entries [0, released) are -1
    uint64_t last_key = 0;           // key of the last full block (0 before the first)
    std::vector<int32_t> partial;    // computed tokens of the block being filled
    bool cacheable = true;           // false once a full block could not be keyed
  };

  static uint64_t block_key(uint64_t parent, std::span<const int32_t> tokens);
  // A block for a sequence whose last block is `after` (-1: none): a free one (take_free), else
  // the least recently used idle cached one.
  int32_t take_block(int32_t after);
  int32_t take_free(int32_t after);
  void hold(int32_t block);
  void drop(int32_t block);
  void release_before(Seq& s, int32_t first_needed);

  BlockManagerOptions opt_;
  std::vector<Block> blocks_;
  std::vector<uint8_t> free_;   // per block, 1 when unkeyed and unheld
  int64_t n_free_ = 0;
  std::list<int32_t> idle_;     // keyed, unheld: least recently used first
  std::unordered_map<uint64_t, int32_t> by_key_;
  std::vector<Seq> seqs_;
  PrefixCacheStats stats_;
  PrefixHook hook_;
};

}  // namespace semline
