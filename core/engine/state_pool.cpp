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
  backends_.resize(layers_.size(), nullptr);
  backends_[static_cast<size_t>(l)] = &b;
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

Tensor StatePool::row(const Tensor& pool, int32_t slot) const {
  if (slot < 0 || slot >= n_slots_)
    throw Error("recurrent state slot " + std::to_string(slot) + " of " + std::to_string(n_slots_));
  Tensor r = pool;
  r.ne[1] = 1;
  r.offset += static_cast<size_t>(slot) * static_cast<size_t>(pool.nb[1]);
  if (r.host) r.host = static_cast<char*>(r.host) + static_cast<size_t>(slot) * static_cast<size_t>(pool.nb[1]);
  return r;
}

StatePool::Snapshot StatePool::save(int32_t slot) {
  Snapshot s;
  for (size_t l = 0; l < layers_.size(); ++l) {
    if (!layers_[l]) continue;
    for (const Tensor& pool : layers_[l]->pools) {
      s.rows.emplace_back(static_cast<size_t>(pool.ne[0]));
      backends_[l]->copy_to_host(row(pool, slot), s.rows.back().data(), s.rows.back().size() * 4, backends_[l]->stream());
    }
    backends_[l]->stream().synchronize();
  }
  s.position = position_.at(static_cast<size_t>(slot));
  return s;
}

void StatePool::restore(int32_t slot, const Snapshot& s) {
  size_t i = 0;
  for (size_t l = 0; l < layers_.size(); ++l) {
    if (!layers_[l]) continue;
    for (const Tensor& pool : layers_[l]->pools) {
      if (i >= s.rows.size() || s.rows[i].size() != static_cast<size_t>(pool.ne[0]))
        throw Error("a recurrent state snapshot of another line");
      backends_[l]->copy_to_device(s.rows[i].data(), row(pool, slot), s.rows[i].size() * 4, backends_[l]->stream());
      ++i;
    }
    backends_[l]->stream().synchronize();
  }
  position_.at(static_cast<size_t>(slot)) = s.position;
}

void StatePool::keep(uint64_t key, int32_t slot) {
  if (key == 0 || kept(key)) return;
  kept_.emplace_front(key, save(slot));
  by_key_[key] = kept_.begin();
  while (kept_.size() > static_cast<size_t>(n_slots_)) {
    by_key_.erase(kept_.back().first);
    kept_.pop_back();
  }
}

bool StatePool::resume(int32_t slot, uint64_t key, int32_t n_tokens) {
  const auto it = by_key_.find(key);
  if (it == by_key_.end() || it->second->second.position != n_tokens) return false;
  kept_.splice(kept_.begin(), kept_, it->second);
  restore(slot, it->second->second);
  return true;
}

}  // namespace semline
