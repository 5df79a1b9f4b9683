// The paged KV cache: per-layer pools of fixed-size blocks on the attention stage's backend, and
// the BlockManager that says which block holds which positions of which sequence (shared among
// sequences with a common prefix, released behind a window). Memory follows the tokens actually
// held; this class owns the memory and offers the one-sequence calls most callers need.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include <semline/backend.h>
#include <semline/stage.h>

#include "core/engine/block_manager.h"

namespace semline {

struct KvCacheOptions {
  int32_t block_tokens = 16;
  DType dtype = DType::F32;
  int32_t context = 2048;  // most tokens one sequence may hold
  int32_t max_seqs = 1;    // sequences the default pool is sized for
  // The most recent positions any layer reads again (the largest Stage::kv_window over the
  // layers); 0: some layer reads the whole context, nothing is released.
  int32_t window = 0;
  int32_t max_step_tokens = 512;  // most tokens one step adds (sizes a windowed sequence's share)
  // The pool: n_blocks when > 0, else size_bytes worth when > 0, else max_seqs sequences of the
  // whole context (of their window's share when windowed), capped at half the memory available.
  int64_t n_blocks = 0;
  int64_t size_bytes = 0;
  bool prefix_caching = true;
};

class KvCache {
 public:
  // layer_backends[L]: the backend of layer L's attention stage; null for a layer without one
  // (a recurrent mixer), whose KvLayer holds no memory.
  KvCache(const KvCacheOptions& opt, const std::vector<Backend*>& layer_backends, int64_t n_head_kv,
          int64_t head_dim);

  BlockManager& blocks() { return *blocks_; }
  const BlockManager& blocks() const { return *blocks_; }

  // One-sequence calls over blocks(), with errors that say what to change.
  int32_t new_sequence() { return blocks_->new_sequence(); }
  void free_sequence(int32_t seq) { blocks_->free_sequence(seq); }
  // Makes room for n_tokens more tokens of seq; throws when the context or the pool is full.
  void reserve(int32_t seq, int32_t n_tokens);
  // After a step: those tokens of seq are now cached (see BlockManager::advance).
  void advance(int32_t seq, std::span<const int32_t> tokens) { blocks_->advance(seq, tokens); }
  SeqView view(int32_t seq) const { return blocks_->view(seq); }
  int32_t n_past(int32_t seq) const { return blocks_->n_past(seq); }
  int32_t used_blocks(int32_t seq) const;  // blocks the sequence holds now
  int64_t free_blocks() const { return blocks_->available_blocks(); }

  const KvLayer& layer(int32_t l) const { return layers_[l]; }
  int32_t n_layers() const { return static_cast<int32_t>(layers_.size()); }
  size_t bytes() const { return bytes_; }
  size_t block_bytes() const { return block_bytes_; }  // one block in every layer, keys and values
  const KvCacheOptions& options() const { return opt_; }

 private:
  KvCacheOptions opt_;
  std::unique_ptr<BlockManager> blocks_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::vector<KvLayer> layers_;
  size_t bytes_ = 0;
  size_t block_bytes_ = 0;
};

}  // namespace semline
