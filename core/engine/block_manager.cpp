#include "core/engine/block_manager.h"

#include <algorithm>
#include <string>

#include <semline/error.h>

namespace semline {

BlockManager::BlockManager(const BlockManagerOptions& opt) : opt_(opt) {
  if (opt.block_tokens <= 0 || opt.n_blocks <= 0 || opt.window < 0)
    throw Error("kv cache: block_tokens and the block count must be > 0 (got " + std::to_string(opt.block_tokens) +
                " and " + std::to_string(opt.n_blocks) + ")");
  blocks_.resize(static_cast<size_t>(opt.n_blocks));
  free_.assign(static_cast<size_t>(opt.n_blocks), 1);
  n_free_ = opt.n_blocks;
}

// splitmix64 over the parent key and each token: a key names the whole prefix ending at its block.
uint64_t BlockManager::block_key(uint64_t parent, std::span<const int32_t> tokens) {
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  uint64_t h = mix(parent ^ 0x5e4d1e0f7a3c2b19ull);
  for (int32_t t : tokens) h = mix(h ^ static_cast<uint32_t>(t));
  return h ? h : 1;  // 0 stands for "no parent"
}

int32_t BlockManager::new_sequence() {
  for (size_t i = 0; i < seqs_.size(); ++i)
    if (!seqs_[i].live) {
      seqs_[i] = Seq{};
      seqs_[i].live = true;
      return static_cast<int32_t>(i);
    }
  seqs_.emplace_back();
  seqs_.back().live = true;
  return static_cast<int32_t>(seqs_.size() - 1);
}

void BlockManager::hold(int32_t b) {
  Block& blk = blocks_[b];
  if (blk.refs++ == 0 && blk.keyed) idle_.erase(blk.lru);
}

void BlockManager::drop(int32_t b) {
  Block& blk = blocks_[b];
  if (--blk.refs > 0) return;
  if (blk.keyed) {
    idle_.push_back(b);
    blk.lru = std::prev(idle_.end());
  } else {
    free_[static_cast<size_t>(b)] = 1;
    ++n_free_;
  }
}

// The block right after the sequence's last one when it is free: a sequence's blocks then follow
// one another in the pool, and attention reads its keys and values as one run instead of a run
// per block. Else one with room after it: the start of the longest free run when that run begins
// the pool, otherwise its middle, so that sequences started together (a batch of requests) each
// have free blocks ahead of them and the one before has the half behind.
int32_t BlockManager::take_free(int32_t after) {
  const auto n = static_cast<int32_t>(free_.size());
  int32_t b = after >= 0 && after + 1 < n && free_[static_cast<size_t>(after) + 1] ? after + 1 : -1;
  if (b < 0) {
    int32_t start = 0, longest = 0;
    for (int32_t i = 0; i < n;) {
      if (!free_[static_cast<size_t>(i)]) {
        ++i;
        continue;
      }
      int32_t j = i + 1;
      while (j < n && free_[static_cast<size_t>(j)]) ++j;
      if (j - i > longest) start = i, longest = j - i;
      i = j;
    }
    b = start == 0 ? 0 : start + longest / 2;
  }
  free_[static_cast<size_t>(b)] = 0;
  --n_free_;
  return b;
}

int32_t BlockManager::take_block(int32_t after) {
  int32_t b;
  if (n_free_ > 0) {
    b = take_free(after);
  } else {
    b = idle_.front();  // the least recently used cached block: its prefix is forgotten
    idle_.pop_front();
    Block& blk = blocks_[b];
    by_key_.erase(blk.key);
    blk.keyed = false;
    blk.tokens.clear();
  }
  blocks_[b].refs = 1;
  return b;
}

void BlockManager::free_sequence(int32_t seq) {
  Seq& s = seqs_.at(static_cast<size_t>(seq));
  for (int32_t b : s.table)
    if (b >= 0) drop(b);
  s = Seq{};
}

int32_t BlockManager::attach_prefix(int32_t seq, std::span<const int32_t> tokens) {
  Seq& s = seqs_.at(static_cast<size_t>(seq));
  if (!s.table.empty() || s.n_past != 0) throw Error("kv cache: a prefix attaches only to a new sequence");
  if (!opt_.prefix_caching || tokens.size() < 2) return 0;
  const size_t bt = static_cast<size_t>(opt_.block_tokens);
  const size_t whole = (tokens.size() - 1) / bt;  // at least one token is left to compute
  stats_.queried_tokens += static_cast<int64_t>(tokens.size());
  std::vector<uint64_t> keys;  // of the cached blocks that start the tokens
  std::vector<int32_t> found;
  uint64_t key = 0;
  for (size_t i = 0; i < whole; ++i) {
    const auto part = tokens.subspan(i * bt, bt);
    key = block_key(key, part);
    auto it = by_key_.find(key);
    if (it == by_key_.end() || !std::equal(part.begin(), part.end(), blocks_[it->second].tokens.begin())) break;
    keys.push_back(key);
    found.push_back(it->second);
  }
  size_t n = found.size();
  if (hook_)
    while (n > 0 && !hook_(seq, keys[n - 1], static_cast<int32_t>(n * bt))) --n;
  for (size_t i = 0; i < n; ++i) {
    hold(found[i]);
    s.table.push_back(found[i]);
  }
  s.last_key = n > 0 ? keys[n - 1] : 0;
  s.n_past = static_cast<int32_t>(n * bt);
  stats_.hit_tokens += s.n_past;
  return s.n_past;
}

uint64_t BlockManager::prefix_key(int32_t seq) const {
  const Seq& s = seqs_.at(static_cast<size_t>(seq));
  return opt_.prefix_caching && s.cacheable && s.n_past > 0 && s.partial.empty() ? s.last_key : 0;
}

int64_t BlockManager::blocks_needed(int32_t seq, int32_t n_tokens) const {
  const Seq& s = seqs_.at(static_cast<size_t>(seq));
  const int64_t need = (static_cast<int64_t>(s.n_past) + n_tokens + opt_.block_tokens - 1) / opt_.block_tokens;
  return std::max<int64_t>(0, need - static_cast<int64_t>(s.table.size()));
}

bool BlockManager::try_reserve(int32_t seq, int32_t n_tokens) {
  const int64_t need = blocks_needed(seq, n_tokens);
  if (need > available_blocks()) return false;
  Seq& s = seqs_.at(static_cast<size_t>(seq));
  for (int64_t i = 0; i < need; ++i) s.table.push_back(take_block(s.table.empty() ? -1 : s.table.back()));
  return true;
}

void BlockManager::advance(int32_t seq, std::span<const int32_t> tokens) {
  Seq& s = seqs_.at(static_cast<size_t>(seq));
  const int64_t end = static_cast<int64_t>(s.n_past) + static_cast<int64_t>(tokens.size());
  if (end > static_cast<int64_t>(s.table.size()) * opt_.block_tokens)
    throw Error("kv cache: a sequence advanced past the blocks reserved for it");
  int32_t pos = s.n_past;
  for (int32_t t : tokens) {
    s.partial.push_back(t);
    ++pos;
    if (static_cast<int32_t>(s.partial.size()) < opt_.block_tokens) continue;
    const int32_t b = s.table[static_cast<size_t>((pos - 1) / opt_.block_tokens)];
    if (opt_.prefix_caching && s.cacheable && b >= 0) {
      const uint64_t k = block_key(s.last_key, s.partial);
      Block& blk = blocks_[b];
      if (!by_key_.count(k) && !blk.keyed) {
        blk.keyed = true;
        blk.key = k;
        blk.tokens = s.partial;
        by_key_[k] = b;
      }
      s.last_key = k;  // a prefix computed twice is cached once; later blocks still chain on
    } else {
      s.cacheable = false;
    }
    s.partial.clear();
  }
  s.n_past = static_cast<int32_t>(end);
  // The next query sits at position n_past and reads from n_past - window + 1 on.
  if (opt_.window > 0) release_before(s, s.n_past - opt_.window + 1);
}

void BlockManager::trim(int32_t seq) {
  Seq& s = seqs_.at(static_cast<size_t>(seq));
  const size_t keep = static_cast<size_t>((static_cast<int64_t>(s.n_past) + opt_.block_tokens - 1) / opt_.block_tokens);
  while (s.table.size() > keep) {
    if (s.table.back() >= 0) drop(s.table.back());
    s.table.pop_back();
  }
}

int32_t BlockManager::truncate(int32_t seq, std::span<const int32_t> tokens) {
  Seq& s = seqs_.at(static_cast<size_t>(seq));
  const int32_t bt = opt_.block_tokens;
  int32_t n = static_cast<int32_t>(tokens.size());
  if (n > s.n_past)
    throw Error("kv cache: a sequence of " + std::to_string(s.n_past) + " positions cannot be cut to " + std::to_string(n));
  const size_t cut_block = static_cast<size_t>(n / bt);
  if (n % bt != 0 && cut_block < s.table.size() && s.table[cut_block] >= 0 && blocks_[s.table[cut_block]].keyed) {
    Block& blk = blocks_[s.table[cut_block]];
    if (blk.refs == 1) {  // cached, but only this sequence holds it: it stops being cached
      by_key_.erase(blk.key);
      blk.keyed = false;
      blk.tokens.clear();
    } else {
      n = static_cast<int32_t>(cut_block) * bt;
    }
  }
  if (s.released > 0 && n - opt_.window + 1 < s.released * bt) n = 0;
  const size_t keep = static_cast<size_t>((n + bt - 1) / bt);
  while (s.table.size() > keep) {
    if (s.table.back() >= 0) drop(s.table.back());
    s.table.pop_back();
  }
  s.released = std::min(s.released, static_cast<int32_t>(keep));
  s.n_past = n;
  const int32_t whole = n / bt;
  s.partial.assign(tokens.begin() + static_cast<std::ptrdiff_t>(whole) * bt, tokens.begin() + n);
  // The key chain up to the last whole block, as advance() built it.
  s.last_key = 0;
  if (opt_.prefix_caching && s.cacheable)
    for (int32_t i = 0; i < whole; ++i) s.last_key = block_key(s.last_key, tokens.subspan(static_cast<size_t>(i) * bt, bt));
  return n;
}

void BlockManager::release_before(Seq& s, int32_t first_needed) {
  const int64_t whole = first_needed / opt_.block_tokens;  // blocks entirely below first_needed
  for (; s.released < whole && s.released < static_cast<int32_t>(s.table.size()); ++s.released) {
    drop(s.table[static_cast<size_t>(s.released)]);
    s.table[static_cast<size_t>(s.released)] = -1;
  }
}

SeqView BlockManager::view(int32_t seq) const {
  const Seq& s = seqs_.at(static_cast<size_t>(seq));
  // A sequence's id doubles as its row in the recurrent state pools: ids are reused lowest first,
  // so they stay below the number of sequences held at once.
  return SeqView{s.n_past, s.table.data(), static_cast<int32_t>(s.table.size()), seq};
}

int32_t BlockManager::n_past(int32_t seq) const { return seqs_.at(static_cast<size_t>(seq)).n_past; }

int64_t BlockManager::available_blocks() const { return n_free_ + static_cast<int64_t>(idle_.size()); }

int64_t BlockManager::held_blocks() const { return n_blocks() - available_blocks(); }

}  // namespace semline
