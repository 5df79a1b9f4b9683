#include "backend/step_data.h"

#include <cmath>
#include <string>

#include <semline/error.h>

#include "backend/vulkan_backend.h"

namespace semline::vk {

namespace {
constexpr int32_t kPerToken = 5;  // tokens, positions, seq_start, out_rows, slots
}  // namespace

StepData::StepData(VulkanBackend& be) : be_(be) {}

StepData::~StepData() = default;

void StepData::grow(int32_t tokens, int64_t table_entries) {
  if (buf_ && tokens <= max_tokens_ && table_entries <= table_cap_) return;
  max_tokens_ = std::max(max_tokens_, tokens);
  while (table_cap_ < table_entries) table_cap_ = table_cap_ ? table_cap_ * 2 : 1024;
  if (table_cap_ == 0) table_cap_ = 1024;
  const size_t words = static_cast<size_t>(kPerToken * static_cast<int64_t>(max_tokens_) + table_cap_);
  buf_.reset();
  buf_ = std::make_unique<VulkanBuffer>(be_, words * 4);
  host_.assign(words, 0);
  view_.tokens = 0;
  view_.positions = static_cast<uint32_t>(max_tokens_);
  view_.seq_start = static_cast<uint32_t>(2 * max_tokens_);
  view_.out_rows = static_cast<uint32_t>(3 * max_tokens_);
  view_.slots = static_cast<uint32_t>(4 * max_tokens_);
  view_.tables = static_cast<uint32_t>(kPerToken * max_tokens_);
  uploaded_ = false;
}

void StepData::reserve(int32_t max_tokens) { grow(max_tokens, table_cap_); }

void StepData::reserve_rope(const std::vector<double>& inv_freq) {
  for (const Rope& r : ropes_)
    if (r.inv_freq == inv_freq) return;
  Rope r;
  r.inv_freq = inv_freq;
  ropes_.push_back(std::move(r));
}

const StepView& StepData::upload(const Batch& b) {
  if (same_step(b)) return view_;
  if (b.n_tokens < 0) throw Error("vulkan backend: a step with " + std::to_string(b.n_tokens) + " tokens");
  if (b.n_outputs < 0 || b.n_outputs > b.n_tokens)
    throw Error("vulkan backend: a step asks for " + std::to_string(b.n_outputs) + " output rows of " +
                std::to_string(b.n_tokens) + " tokens");
  int64_t entries = 0;
  for (int32_t s = 0; s < b.n_seqs; ++s) {
    const SeqView& sv = b.seqs[s];
    if (sv.n_blocks < 0 || (sv.n_blocks > 0 && !sv.blocks))
      throw Error("vulkan backend: sequence " + std::to_string(s) + " of the step has a block table of " +
                  std::to_string(sv.n_blocks) + " entries and " + (sv.blocks ? "an address" : "no address"));
    entries += sv.n_blocks;
  }
  grow(b.n_tokens, entries);

  const int32_t M = max_tokens_;
  std::vector<int32_t> start(static_cast<size_t>(b.n_seqs));
  int32_t at = 0;
  for (int32_t s = 0; s < b.n_seqs; ++s) {
    start[s] = at;
    for (int32_t i = 0; i < b.seqs[s].n_blocks; ++i) host_[view_.tables + at + i] = b.seqs[s].blocks[i];
    at += b.seqs[s].n_blocks;
  }
  for (int32_t t = 0; t < b.n_tokens; ++t) {
    host_[view_.tokens + t] = b.tokens ? b.tokens[t] : 0;
    host_[view_.positions + t] = b.positions ? b.positions[t] : 0;
    // Only attention reads table starts, and it refuses bad sequence indices before it uploads.
    const int32_t s = b.seq ? b.seq[t] : -1;
    host_[view_.seq_start + t] = s >= 0 && s < b.n_seqs ? start[s] : 0;
    host_[view_.slots + t] = s >= 0 && s < b.n_seqs ? b.seqs[s].slot : 0;
  }
  for (int32_t i = 0; i < b.n_outputs; ++i) host_[view_.out_rows + i] = b.output_rows[i];
  // The per-token arrays and the tables in use, in two copies.
  VulkanStream& s = be_.vstream();
  s.upload(host_.data(), buf_->gpu(), 0, static_cast<size_t>(kPerToken * M) * 4);
  if (at > 0) s.upload(host_.data() + view_.tables, buf_->gpu(), static_cast<size_t>(view_.tables) * 4, static_cast<size_t>(at) * 4);
  step_ = b.step;
  uploaded_ = true;
  for (Rope& r : ropes_) r.fresh = false;
  return view_;
}

const GpuBuffer& StepData::ints() const { return buf_->gpu(); }

const GpuBuffer& StepData::rope(const Batch& b, const std::vector<double>& inv_freq) {
  Rope* r = nullptr;
  for (Rope& x : ropes_)
    if (x.inv_freq == inv_freq) r = &x;
  if (!r) {
    reserve_rope(inv_freq);
    r = &ropes_.back();
  }
  const int64_t rope_dim = 2 * static_cast<int64_t>(inv_freq.size());
  if (r->fresh && same_step(b)) return r->buf->gpu();
  const size_t floats = static_cast<size_t>(max_tokens_) * static_cast<size_t>(rope_dim);
  if (!r->buf || r->buf->size() < floats * 4) {
    r->buf.reset();
    r->buf = std::make_unique<VulkanBuffer>(be_, std::max<size_t>(floats, 1) * 4);
    r->host.assign(floats, 0.0f);
  }
  const int64_t half = rope_dim / 2;
  for (int32_t t = 0; t < b.n_tokens; ++t) {
    const double pos = b.positions[t];
    float* cs = r->host.data() + static_cast<size_t>(t) * static_cast<size_t>(rope_dim);
    // Angles in double: pos * theta_i loses digits in float once positions reach the thousands.
    for (int64_t i = 0; i < half; ++i) {
      const double a = pos * r->inv_freq[i];
      cs[2 * i] = static_cast<float>(std::cos(a));
      cs[2 * i + 1] = static_cast<float>(std::sin(a));
    }
  }
  if (b.n_tokens > 0)
    be_.vstream().upload(r->host.data(), r->buf->gpu(), 0, static_cast<size_t>(b.n_tokens) * rope_dim * 4);
  r->fresh = true;
  return r->buf->gpu();
}

}  // namespace semline::vk
