// The recurrent state of a line's stateful mixers (Stage::state_sizes, Mamba): per such layer,
// pools of one F32 row per sequence on the stage's backend. A sequence's row is its id in the
// BlockManager (SeqView::slot), so it has one while it holds cache blocks and a new sequence
// (n_past 0) starts over. The pool remembers how far each row has advanced and refuses a step that
// does not continue it: a recurrent state cannot be rolled back, and a silent restart would give
// other text.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include <semline/backend.h>
#include <semline/stage.h>

namespace semline {

class StatePool {
 public:
  StatePool(int32_t n_layer, int32_t n_slots) : layers_(static_cast<size_t>(n_layer)), n_slots_(n_slots) {}

  // Layer l's pools on backend b, one of each size (F32 values per sequence).
  void add_layer(int32_t l, Backend& b, const std::vector<int64_t>& sizes);
  const StateLayer* layer(int32_t l) const;
  bool empty() const { return buffers_.empty(); }
  int32_t slots() const { return n_slots_; }
  size_t bytes() const { return bytes_; }

  // Before a step: every sequence has a row and continues its state (tokens in position order from
  // n_past, n_past either 0 or where its state stands). After it: the rows have advanced.
  void check_step(const Batch& b) const;
  void commit_step(const Batch& b);

  // A copy of one slot's state (every layer's rows, in host memory) and where it stands, to be put
  // back later into any slot: a context computed once and continued many times.
  struct Snapshot {
    std::vector<std::vector<float>> rows;
    int32_t position = 0;
  };
  Snapshot save(int32_t slot);
  void restore(int32_t slot, const Snapshot& s);

  // Saved states at the ends of cached prefixes, named by the key of the prefix's last block
  // (BlockManager::prefix_key): a later sequence that attaches that prefix (a repeated prompt, the
  // other choices of n > 1) continues from the state instead of computing the prompt again. Up to
  // slots() states are kept in host memory, the least recently used dropped first.
  void keep(uint64_t key, int32_t slot);
  bool kept(uint64_t key) const { return by_key_.count(key) != 0; }
  // Puts the state kept under `key` into `slot` if there is one that stands at position n_tokens
  // (the BlockManager's prefix hook).
  bool resume(int32_t slot, uint64_t key, int32_t n_tokens);

 private:
  Tensor row(const Tensor& pool, int32_t slot) const;
  std::vector<std::unique_ptr<StateLayer>> layers_;  // null: no state in that layer
  std::vector<Backend*> backends_;                   // per layer, with its state
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::vector<int32_t> position_;  // per slot: the tokens its state has taken in
  int32_t n_slots_;
  size_t bytes_ = 0;
  std::list<std::pair<uint64_t, Snapshot>> kept_;  // most recently used first
  std::unordered_map<uint64_t, std::list<std::pair<uint64_t, Snapshot>>::iterator> by_key_;
};

}  // namespace semline
