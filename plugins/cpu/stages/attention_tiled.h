// Attention over key tiles with an online softmax, so no score matrix over the whole context
// exists: the core of attention/flash, attention/sliding_window and attention/block_sparse, which
// differ only in which keys of a tile a query meets (keys_in_tile).
//
// The queries of a run of tokens of one sequence and of all the query heads sharing a kv head
// meet each key tile together: q K^T is one small matrix product over the keys (which stay in
// cache for all of those queries) and the values are accumulated into output rows held in
// registers. Tiles are the multiples of the tile size, cut to the keys the run's queries read, so
// a key block no query of the run reads is never touched.
#pragma once

#include <cstdint>

#include "stages/attention.h"

namespace semline::cpu {

class TiledAttention : public Attention {
 public:
  TiledAttention(const StageContext& ctx, int64_t tile);

 protected:
  struct KeyRange {
    int32_t lo, hi;  // keys [lo, hi); empty when hi <= lo
  };
  // The keys of the tile [p0, p1) that the query at position `pos` attends to: a sub-range
  // inside [first_key(pos), pos] (the mask of the variant, restricted to the tile).
  virtual KeyRange keys_in_tile(int32_t pos, int32_t p0, int32_t p1) const = 0;

  int64_t tile_;  // keys per tile

 private:
  void core(const Work& w) final;
  void attend(const Work& w, int32_t t0, int32_t nt, int64_t g, char* scratch) const;

  int64_t tile_tokens_;  // tokens per work item
  int64_t rows_;         // query rows per work item: tile_tokens * group
  size_t tiles_ = 0;     // [max_tokens][2] int32: first token and count of each run
  size_t workers_ = 0, worker_bytes_ = 0;
  // Inside a worker's area: packed scaled queries [rows][hd], scores [rows][tile], output
  // accumulators [rows][hd], per row the first and end key of the tile it meets and the end in
  // one of its segments, position, running max and sum.
  size_t qp_ = 0, s_ = 0, o_ = 0, lo_ = 0, nv_ = 0, nv_seg_ = 0, pos_ = 0, m_ = 0, l_ = 0;
};

}  // namespace semline::cpu
