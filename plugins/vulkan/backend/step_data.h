// What every stage of a step reads besides activations, uploaded once per step: token ids,
// positions, each token's block-table start, the wanted output rows, each token's recurrent state
// row (its sequence's SeqView::slot) and the sequences' block tables, packed as int32 words in one device buffer; and RoPE cos/sin tables, one per (rope_dim,
// base) the stages use, computed on the host in double precision.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <semline/stage.h>

#include "device/memory.h"

namespace semline::vk {

class VulkanBackend;
class VulkanBuffer;

// Word offsets of the arrays inside ints().
struct StepView {
  uint32_t tokens = 0, positions = 0, seq_start = 0, out_rows = 0, slots = 0, tables = 0;
};

class StepData {
 public:
  explicit StepData(VulkanBackend& be);
  ~StepData();

  void reserve(int32_t max_tokens);                 // when a stage is bound
  // When an attention stage is bound: its rotation frequencies ([rope_dim / 2]).
  void reserve_rope(const std::vector<double>& inv_freq);

  // Packs and uploads the batch unless this step was uploaded already (Batch::step 0 always
  // uploads). Throws naming a bad sequence index or block table.
  const StepView& upload(const Batch& b);
  const GpuBuffer& ints() const;
  // The cos/sin table of the step's positions: [token][rope_dim/2] pairs (cos, sin).
  const GpuBuffer& rope(const Batch& b, const std::vector<double>& inv_freq);

 private:
  struct Rope {
    std::vector<double> inv_freq;  // one table per distinct set of frequencies
    bool fresh = false;  // uploaded for the step last uploaded
    std::unique_ptr<VulkanBuffer> buf;
    std::vector<float> host;
  };
  void grow(int32_t tokens, int64_t table_entries);
  bool same_step(const Batch& b) const { return b.step != 0 && b.step == step_ && uploaded_; }

  VulkanBackend& be_;
  int32_t max_tokens_ = 0;
  int64_t table_cap_ = 0;
  std::unique_ptr<VulkanBuffer> buf_;
  std::vector<int32_t> host_;
  StepView view_;
  uint64_t step_ = 0;
  bool uploaded_ = false;
  std::vector<Rope> ropes_;
};

}  // namespace semline::vk
