// The cpu backend's attention cores (stations/attention.h): where a step's queries meet the keys
// and values of the paged cache. dense: a full score row per query; tiled: key tiles with an
// online softmax under the variant's mask (flash, sliding_window, block_sparse).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <semline/stage.h>

#include "backend/cpu_backend.h"
#include "stations/attention.h"

namespace semline::cpu {

// One of the cache's two pools (k or v): rows of head_dim values of one kv head at one position.
struct KvPool {
  const char* base = nullptr;
  size_t block = 0, slot = 0, head = 0;  // byte strides
  DType dtype = DType::F32;              // F32, F16 or Q8_0
  const char* row(int32_t blk, int32_t s, int64_t kv_head) const {
    return base + blk * block + s * slot + kv_head * head;
  }
  // The cache row of a sequence's position (positions are checked by the station).
  const char* row_at(const SeqView& sv, int32_t pos, int32_t block_tokens, int64_t kv_head) const {
    return row(sv.blocks[pos / block_tokens], pos % block_tokens, kv_head);
  }
  // How many of positions [pos, end) lie one slot after another from pos's row, so one stride
  // reads them all: the rest of its block, and the blocks after it while the sequence holds the
  // pool's next block and a block is block_tokens slots long (the host's pools, each head's
  // blocks together, and slot-major ones; not blocks that keep a run of each head inside them).
  int32_t run_at(const SeqView& sv, int32_t pos, int32_t block_tokens, int32_t end) const {
    int32_t b = pos / block_tokens, p = (b + 1) * block_tokens;
    if (block == block_tokens * slot)
      while (p < end && sv.blocks[b + 1] == sv.blocks[b] + 1) ++b, p += block_tokens;
    return std::min(p, end) - pos;
  }
  // A kv head's rows at positions [p0, p1) as runs (run_at), written to first and len (room for
  // p1 - p0 runs).
  RowRuns runs(const SeqView& sv, int32_t block_tokens, int64_t kv_head, int32_t p0, int32_t p1, const char** first,
               int32_t* len) const {
    int32_t n = 0;
    for (int32_t p = p0; p < p1; p += len[n++]) {
      first[n] = row_at(sv, p, block_tokens, kv_head);
      len[n] = run_at(sv, p, block_tokens, p1);
    }
    return RowRuns{first, len, n, slot};
  }
};
KvPool kv_pool(const Tensor& t);

// What a core reads and writes in a step.
struct CoreStep {
  const Batch& batch;
  const float* q;  // [n_tokens] rows of n_head * head_dim rotated queries, q_stride floats apart
  int64_t q_stride;
  float* attn;  // [n_tokens] rows of n_head * head_dim, attn_stride floats apart
  int64_t attn_stride;
  KvPool k, v;
  int32_t block_tokens;
  char* scratch;  // the workspace base
};
CoreStep core_step(CpuBackend& be, const Step& step, const Tensor& q, const Tensor& attn);

// The reference: for each token and head the full row of scores over its keys, a softmax, and
// the weighted sum of the values (attention_dense.cpp).
class DenseCore final : public stations::AttentionCore {
 public:
  DenseCore(CpuBackend& be, const StageContext& ctx, const stations::AttentionShape& a, const stations::CoreSpec& spec);
  void prepare(int64_t max_keys) override;
  void run(const Step& step, const Tensor& q, const Tensor& attn) override;

 private:
  size_t scores_bytes() const { return static_cast<size_t>(be_.host_threads() * (capacity_ + hd_)) * 4; }

  CpuBackend& be_;
  int64_t n_head_, hd_, group_;
  float scale_, softcap_;  // softcap_ 0: none
  size_t scores_;  // per worker: [capacity + hd] floats (scores, a rounded query), from here in the workspace
  int64_t capacity_ = 0;  // longest score row the scratch holds
};

// Key tiles with an online softmax under any mask (attention_tiled.cpp).
class TiledCore final : public stations::AttentionCore {
 public:
  TiledCore(CpuBackend& be, const StageContext& ctx, const stations::AttentionShape& a, const stations::CoreSpec& spec);
  void run(const Step& step, const Tensor& q, const Tensor& attn) override;

 private:
  void attend(const CoreStep& w, int32_t t0, int32_t nt, int64_t g, char* scratch) const;

  CpuBackend& be_;
  const stations::KeyMask& mask_;
  int64_t n_kv_, hd_, group_;
  float scale_, softcap_;  // softcap_ 0: none
  int64_t tile_;         // keys per tile
  int64_t tile_tokens_;  // tokens per work item
  int64_t rows_;         // query rows per work item: tile_tokens * group
  size_t tiles_ = 0;     // [max_tokens][2] int32: first token and count of each run
  size_t workers_ = 0, worker_bytes_ = 0;
  // Inside a worker's area: packed scaled queries [rows][hd], scores [rows][tile], output
  // accumulators [rows][hd], per row the first and end key of the tile it meets, position,
  // running max and sum; the runs of the tile's keys and values (first rows, lengths).
  size_t qp_ = 0, s_ = 0, o_ = 0, lo_ = 0, nv_ = 0, pos_ = 0, m_ = 0, l_ = 0;
  size_t k_first_ = 0, k_len_ = 0, v_first_ = 0, v_len_ = 0;
};

}  // namespace semline::cpu
