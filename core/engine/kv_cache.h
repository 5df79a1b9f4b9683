// The paged KV cache: per-layer pools of fixed-size blocks on the attention stage's backend, and
// per-sequence block tables shared by all layers. Blocks are taken from a free list as sequences
// grow and returned when a sequence ends, so memory follows the tokens actually held. When every
// layer attends over a window (KvCacheOptions::window), the blocks a sequence has left behind its
// window go back too, and the pool is sized for the window instead of the whole context.
#pragma once

#include <memory>
#include <vector>

#include <semline/backend.h>
#include <semline/stage.h>

namespace semline {

struct KvCacheOptions {
  int32_t block_tokens = 16;
  DType dtype = DType::F32;
  int32_t context = 2048;  // most tokens one sequence may hold
  int32_t max_seqs = 1;
  // The most recent positions any layer reads again (the largest Stage::kv_window over the
  // layers); 0: some layer reads the whole context, nothing is released.
  int32_t window = 0;
  int32_t max_step_tokens = 512;  // most tokens one reserve() adds (sizes a windowed pool)
};

class KvCache {
 public:
  // layer_backends[L]: the backend of layer L's attention stage.
  KvCache(const KvCacheOptions& opt, const std::vector<Backend*>& layer_backends, int64_t n_head_kv,
          int64_t head_dim);

  int32_t new_sequence();                     // returns a sequence id
  void free_sequence(int32_t seq);            // its blocks go back to the pool
  // Makes room for `n_tokens` more tokens of `seq`; throws when the context or the pool is full.
  void reserve(int32_t seq, int32_t n_tokens);
  // After a step: those tokens are now cached; with a window, the blocks the next query can no
  // longer reach are released (release_before).
  void advance(int32_t seq, int32_t n_tokens);
  // Returns to the free list every block of `seq` whose positions are all below first_needed and
  // marks its table entry -1 (the table keeps its indexing by position).
  void release_before(int32_t seq, int32_t first_needed);
  SeqView view(int32_t seq) const;              // valid until the next reserve/free
  int32_t n_past(int32_t seq) const;

  const KvLayer& layer(int32_t l) const { return layers_[l]; }
  int32_t n_layers() const { return static_cast<int32_t>(layers_.size()); }
  size_t bytes() const { return bytes_; }
  int32_t free_blocks() const { return static_cast<int32_t>(free_.size()); }
  int32_t used_blocks(int32_t seq) const;  // blocks the sequence holds now
  const KvCacheOptions& options() const { return opt_; }

 private:
  struct Seq {
    bool live = false;
    int32_t n_past = 0;
    std::vector<int32_t> blocks;  // -1: released
    int32_t released = 0;         // entries [0, released) are -1
  };
  KvCacheOptions opt_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::vector<KvLayer> layers_;
  std::vector<int32_t> free_;  // free block ids, taken from the back
  std::vector<Seq> seqs_;
  size_t bytes_ = 0;
  int64_t n_blocks_ = 0;  // in each layer's pool
};

}  // namespace semline
