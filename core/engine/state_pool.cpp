#include "core/engine/state_pool.h"

#include <string>

#include <semline/error.h>

namespace semline {

void StatePool::add_layer(int32_t l, Backend& b, const std::vector<int64_t>& sizes) {
  auto layer = std::make_unique<StateLayer>();
  for (int64_t size : sizes) {
    if (size <= 0) throw Error("block " + std::to_string(l) + ": a recurrent state of " + std::to_string(size) + " values");
    Tensor t = make_tensor(DType::F32, {size, n_slots_});
    const size_t bytes = static_cast<size_t>(t.nb[1]) * static_cast<size_t>(n_slots_);
    buffers_.push_back(b.alloc(bytes));
    t.buffer = buffers_.back().get();
    t.host = t.buffer->host();
    bytes_ += bytes;
    layer->pools.push_back(t);
  }
  layers_.at(static_cast<size_t>(l)) = std::move(layer);
  position_.assign(static_cast<size_t>(n_slots_), 0);
}

const StateLayer* StatePool::layer(int32_t l) const { return layers_.at(static_cast<size_t>(l)).get(); }

void StatePool::check_step(const Batch& b) const {
  std::vector<int32_t> next(static_cast<size_t>(b.n_seqs));
  for (int32_t s = 0; s < b.n_seqs; ++s) {
    const SeqView& v = b.seqs[s];
    if (v.slot < 0 || v.slot >= n_slots_)
      throw Error("sequence slot " + std::to_string(v.slot) + ": the recurrent state holds " +
                  std::to_string(n_slots_) + " sequences (runtime.max_seqs)");
    if (v.n_past != 0 && v.n_past != position_[static_cast<size_t>(v.slot)])
      throw Error("a step continues a sequence from position " + std::to_string(v.n_past) +
                  " but its recurrent state stands at " + std::to_string(position_[static_cast<size_t>(v.slot)]) +
                  ": a model with recurrent layers cannot go back (no speculative decoding or truncation)");
    next[static_cast<size_t>(s)] = v.n_past;
  }
  for (int32_t t = 0; t < b.n_tokens; ++t) {
    int32_t& want = next.at(static_cast<size_t>(b.seq[t]));
    if (b.positions[t] != want)
      throw Error("token " + std::to_string(t) + " of the step is at position " + std::to_string(b.positions[t]) +
                  "; a recurrent layer takes its sequence's tokens in order, the next at " + std::to_string(want));
    ++want;
  }
}

void StatePool::commit_step(const Batch& b) {
  for (int32_t s = 0; s < b.n_seqs; ++s) position_[static_cast<size_t>(b.seqs[s].slot)] = b.seqs[s].n_past;
  for (int32_t t = 0; t < b.n_tokens; ++t) ++position_[static_cast<size_t>(b.seqs[b.seq[t]].slot)];
}

}  // namespace semline
