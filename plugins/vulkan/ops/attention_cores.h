// The vulkan backend's attention cores (stations/attention.h): dense (a score row per query in
// scratch) and flash (key tiles in shared memory with an online softmax), both causal or over a
// sliding window, both reading the paged cache as attention.glsl addresses it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <semline/stage.h>

#include "backend/vulkan_backend.h"
#include "stations/attention.h"

namespace semline::vk {

inline constexpr int64_t kMaxHeadDim = 256;  // MAXHD of attention.glsl
inline constexpr int64_t kMaxFlashTile = 1024;

// The layer's cache as the kernels address it: element offsets and strides of k (v has the same
// layout). The station has had it checked (Kernels::check_kv) before any kernel reads it.
struct KvView {
  const GpuBuffer* k = nullptr;
  const GpuBuffer* v = nullptr;
  uint32_t k_off = 0, v_off = 0, nb1 = 0, nb2 = 0, nb3 = 0;  // values (Q8_0: 32 per 34-byte block)
  uint32_t type = 0;  // the kernels' KV_TYPE: 0 F32, 1 F16, 2 Q8_0
};
inline constexpr uint32_t kKvTypes = 3;
KvView kv_view(const VulkanBackend& be, const KvLayer& kv);

// The push constants both attention kernels read (attention.glsl).
struct AttnPush {
  uint32_t q_off, q_row, a_off, s_off, cap;
  uint32_t t0, n_tokens, n_head, group, hd;
  uint32_t pos_off, start_off, tables_off, bt;
  uint32_t kc_off, vc_off, nb1, nb2, nb3;
  float scale, softcap;
  uint32_t window;  // > 0: a query at pos reads keys from pos - window + 1 on
};
// The push for a step: q and attn rows in the workspace, the step's uploaded positions and tables,
// the score scale and soft cap of `spec` (scale 0: 1 / sqrt(head_dim)).
AttnPush attn_push(VulkanBackend& be, const Step& step, const stations::AttentionShape& a,
                   const stations::CoreSpec& spec, const Tensor& q, const Tensor& attn, const KvView& kv);

// The reference: a score row per query in scratch, then its softmax and the weighted sum of the
// values (attention_dense.cpp). Score rows take tokens x heads x the longest key range; steps
// whose rows would not fit the budget (param scores_mib) run in several dispatches of fewer tokens.
class DenseCore final : public stations::AttentionCore {
 public:
  DenseCore(VulkanBackend& be, const StageContext& ctx, const stations::AttentionShape& a,
            const stations::CoreSpec& spec);
  void prepare(int64_t max_keys) override;
  void run(const Step& step, const Tensor& q, const Tensor& attn) override;

 private:
  // Score rows of `cap` keys for as many tokens as fit the budget (all of a step when they do).
  void grow_rows(int64_t cap);

  VulkanBackend& be_;
  stations::AttentionShape a_;
  stations::CoreSpec spec_;
  int64_t max_tokens_;
  int64_t budget_ = 0;  // bytes of score rows per dispatch
  size_t scores_ = 0;   // byte offset of the score rows in scratch, after the station's own
  int64_t cap_ = 0;     // keys per score row
  int64_t chunk_ = 1;   // tokens per dispatch
  const Kernel* dense_[kKvTypes] = {};  // by KvView::type
};

// Key tiles of `block` positions in shared memory with an online softmax (attention_flash.cpp).
class FlashCore final : public stations::AttentionCore {
 public:
  FlashCore(VulkanBackend& be, const StageContext& ctx, const stations::AttentionShape& a,
            const stations::CoreSpec& spec);
  void run(const Step& step, const Tensor& q, const Tensor& attn) override;

 private:
  VulkanBackend& be_;
  stations::AttentionShape a_;
  stations::CoreSpec spec_;
  const Kernel* flash_[kKvTypes] = {};  // by KvView::type
};

inline constexpr uint32_t kAttentionWorkgroup = 128;  // invocations of attn_dense and attn_flash

}  // namespace semline::vk
