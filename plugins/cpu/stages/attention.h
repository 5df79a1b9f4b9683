// Causal self-attention over the paged KV cache, shared by every cpu attention variant (dense,
// flash, sliding_window, block_sparse), which differ only in how a query meets the keys (the core)
// and in which keys it meets (its mask).
//
// A step: project q, k, v for every batch token (three maps q, k, v, or one fused map qkv whose
// output rows are q | k | v, as GPT-2's c_attn; each with an optional bias); rotate q and k by
// the token's position unless the model has no rotary embedding; write k and v into the cache
// slot of that position; let each token attend to the keys its mask allows among positions
// 0..pos of its own sequence, read back from the cache (so prefill chunks, decode and mixed
// batches share one path); out += W_o attn (+ b_o).
#pragma once

#include <string>
#include <vector>

#include <semline/stage.h>

#include "stages/linear.h"

namespace semline::cpu {

// One of the cache's two pools (k or v): rows of head_dim values of one kv head at one position.
struct KvPool {
  const char* base = nullptr;
  size_t block = 0, slot = 0, head = 0;  // byte strides
  bool f16 = false;
  const char* row(int32_t blk, int32_t s, int64_t kv_head) const {
    return base + blk * block + s * slot + kv_head * head;
  }
};

class Attention : public Stage {
 public:
  explicit Attention(const StageContext& ctx);
  void forward(const Tensor& in, const Tensor& out, const Step& step) final;
  StageCost cost(const Batch& b) const final;

 protected:
  // What a core sees of the step: q rows (rotated) and the attention output rows to fill.
  struct Work {
    const Batch& batch;
    const float* q;    // [n_tokens] rows of n_head * head_dim values, q_stride floats apart
    int64_t q_stride;
    float* attn;       // [n_tokens][n_head * head_dim]
    KvPool k, v;
    int32_t block_tokens;
    char* scratch;   // the workspace base
  };
  // Fills attn[t][h] = softmax(q_t,h . K / sqrt(head_dim)) V over the keys the variant's mask
  // allows among positions 0..pos_t of the token's sequence, kv head h / (n_head / n_head_kv).
  virtual void core(const Work& w) = 0;
  // Called before the workspace is taken, with the longest key range of the step (pos + 1).
  virtual void prepare(int64_t max_keys) {}
  // The first key position a query at `pos` reads: only the cache blocks from there to pos must
  // exist (blocks before it may have been released, see Stage::kv_window).
  virtual int32_t first_key(int32_t pos) const { return 0; }
  // How many keys a query at `pos` meets, for cost().
  virtual double keys_read(int32_t pos) const { return pos - first_key(pos) + 1.0; }

  // The cache row of a sequence's position (positions are checked before the core runs).
  static const char* cache_row(const KvPool& p, const SeqView& s, int32_t pos, int32_t block_tokens,
                               int64_t kv_head) {
    return p.row(s.blocks[pos / block_tokens], pos % block_tokens, kv_head);
  }

  CpuBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  int64_t n_embd_, n_head_, n_kv_, hd_, rope_dim_, group_;
  float scale_;            // 1 / sqrt(head_dim)
  ScratchLayout layout_;   // cores append their scratch and then call reserve_scratch()
  void reserve_scratch() { be_.workspace().reserve(layout_.total()); }

 private:
  void check_kv(const Step& step, KvPool& k, KvPool& v) const;
  int64_t check_positions(const Batch& b, const KvLayer& kv) const;  // returns the longest key range
  // Rotates q and k (rows of qkv) and writes k and v into the cache.
  void rope_and_store(const Batch& b, float* qkv, const KvPool& kc, const KvPool& vc, int32_t block_tokens, char* ws);
  bool input_quantized() const;

  RopeType rope_type_;
  std::vector<double> inv_freq_;  // [rope_dim / 2]: rope_base^(-2i / rope_dim)
  bool fused_;                    // one qkv map instead of q, k, v
  Linear wqkv_;                   // fused: [(n_head + 2 n_kv) * hd][n_embd]
  Linear wq_, wk_, wv_;           // otherwise: [n_head*hd][n_embd], [n_kv*hd][n_embd] x2
  Linear wo_;                     // [n_embd][n_head*hd]
  int64_t qkv_width_ = 0;         // (n_head + 2 n_kv) * hd: a projected row is q | k | v
  size_t qkv_ = 0, attn_ = 0;     // float rows: [max_tokens][qkv_width], [max_tokens][n_head*hd]
  size_t cs_ = 0;                 // per worker: rope_dim floats (cos, sin pairs)
  QRowsLayout xq_, aq_;           // quantised input rows and attention rows
  int kv_elt_ = 4;                           // bytes per cache value, seen in the last step
};

}  // namespace semline::cpu
