// Causal self-attention over the paged KV cache on the device, shared by attention/dense and
// attention/flash, which differ only in the kernel where queries meet keys.
//
// A step: one q | k | v row per batch token in scratch, written whole by a fused qkv map
// (GPT-2's c_attn) or in three column ranges by q, k and v maps side by side, each with its
// optional bias; one kernel rotates q and k by each token's position (RoPE; none for
// RopeType::None) and writes k and v into the cache slot of that position; then every token
// attends to positions 0..pos of its own sequence, read back from the cache (so prefill chunks,
// decode and mixed batches share one path); out += W_o attn (+ b_o).
#pragma once

#include <string>

#include <semline/stage.h>

#include "backend/step_data.h"
#include "backend/workspace.h"
#include "stages/common.h"
#include "stages/linear.h"

namespace semline::vk {

class Attention : public Stage {
 public:
  explicit Attention(const StageContext& ctx);
  void forward(const Tensor& in, const Tensor& out, const Step& step) final;
  StageCost cost(const Batch& b) const final;

 protected:
  // Where a core finds the step: scratch offsets and the cache layout, in words/elements.
  struct Work {
    const Batch& batch;
    const StepView& view;
    const GpuBuffer& ints;
    const GpuBuffer &kc, &vc;
    uint32_t kc_off, vc_off, nb1, nb2, nb3;  // elements
    int32_t block_tokens;
    bool f16;
  };
  // The push constants both attention kernels read (attention.glsl).
  struct AttnPush {
    uint32_t q_off, q_row, a_off, s_off, cap;
    uint32_t t0, n_tokens, n_head, group, hd;
    uint32_t pos_off, start_off, tables_off, bt;
    uint32_t kc_off, vc_off, nb1, nb2, nb3;
    float scale;
  };
  AttnPush push_for(const Work& w) const;

  // Before anything is recorded: the longest key range of the step (scratch may grow here).
  virtual void prepare(int64_t max_keys) {}
  // Records attn[t][h] = softmax(q_t,h . K / sqrt(head_dim)) V over positions 0..pos_t.
  virtual void core(const Work& w) = 0;

  VulkanBackend& be_;
  std::string label_;
  int32_t max_tokens_;
  int64_t n_embd_, n_head_, n_kv_, hd_, rope_dim_, group_, qkv_width_;
  double rope_base_;
  float scale_;
  ScratchLayout layout_;  // qkv, attn here; cores append theirs and reserve
  uint32_t qkv_ = 0, attn_ = 0;  // [max_tokens][qkv_width] q | k | v rows, [max_tokens][n_head * hd]

 private:
  void check_kv(const KvLayer& kv, bool& f16) const;
  int64_t check_positions(const Batch& b, const KvLayer& kv) const;

  RopeType rope_type_;
  bool fused_ = false;       // one qkv map instead of q, k, v
  Linear wqkv_, wq_, wk_, wv_, wo_;
  const Kernel* rope_f32_ = nullptr;
  const Kernel* rope_f16_ = nullptr;
  int kv_elt_ = 4;
};

}  // namespace semline::vk
