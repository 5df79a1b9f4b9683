#include "core/engine/kv_cache.h"

#include <algorithm>
#include <string>

#include <semline/error.h>

namespace semline {

KvCache::KvCache(const KvCacheOptions& opt, const std::vector<Backend*>& layer_backends, int64_t n_head_kv,
                 int64_t head_dim)
    : opt_(opt) {
  if (opt.block_tokens <= 0 || opt.context <= 0 || opt.max_seqs <= 0 || opt.window < 0 || opt.max_step_tokens <= 0)
    throw Error("kv cache: block_tokens, context, max_seqs and max_step_tokens must be > 0, window >= 0");
  int64_t blocks_per_seq = (opt.context + opt.block_tokens - 1) / opt.block_tokens;
  if (opt.window > 0) {
    // A step reads back window - 1 positions and adds up to max_step_tokens: that span touches
    // at most span / block_tokens + 1 blocks wherever it starts, and a sequence holds no others.
    const int64_t span = static_cast<int64_t>(opt.window) - 1 + opt.max_step_tokens;
    blocks_per_seq = std::min(blocks_per_seq, (span + opt.block_tokens - 1) / opt.block_tokens + 1);
  }
  const int64_t n_blocks = blocks_per_seq * opt.max_seqs;
  n_blocks_ = n_blocks;
  for (Backend* b : layer_backends) {
    KvLayer l;
    l.block_tokens = opt.block_tokens;
    for (Tensor* t : {&l.k, &l.v}) {
      *t = make_tensor(opt.dtype, {head_dim, n_head_kv, opt.block_tokens, n_blocks});
      const size_t bytes = static_cast<size_t>(t->nb[3] * n_blocks);
      buffers_.push_back(b->alloc(bytes));
      t->buffer = buffers_.back().get();
      t->host = t->buffer->host();
      bytes_ += bytes;
    }
    layers_.push_back(l);
  }
  for (int64_t i = n_blocks - 1; i >= 0; --i) free_.push_back(static_cast<int32_t>(i));
}

int32_t KvCache::new_sequence() {
  for (size_t i = 0; i < seqs_.size(); ++i)
    if (!seqs_[i].live) {
      seqs_[i] = Seq{true, 0, {}, 0};
      return static_cast<int32_t>(i);
    }
  if (static_cast<int32_t>(seqs_.size()) >= opt_.max_seqs)
    throw Error("kv cache: all " + std::to_string(opt_.max_seqs) + " sequence slots are in use");
  seqs_.push_back(Seq{true, 0, {}, 0});
  return static_cast<int32_t>(seqs_.size() - 1);
}

void KvCache::free_sequence(int32_t seq) {
  Seq& s = seqs_.at(seq);
  for (int32_t b : s.blocks)
    if (b >= 0) free_.push_back(b);
  s = Seq{};
}

void KvCache::release_before(int32_t seq, int32_t first_needed) {
  Seq& s = seqs_.at(seq);
  const int64_t whole = first_needed / opt_.block_tokens;  // blocks entirely below first_needed
  for (; s.released < whole && s.released < static_cast<int32_t>(s.blocks.size()); ++s.released) {
    free_.push_back(s.blocks[s.released]);
    s.blocks[s.released] = -1;
  }
}

int32_t KvCache::used_blocks(int32_t seq) const {
  const Seq& s = seqs_.at(seq);
  return static_cast<int32_t>(s.blocks.size()) - s.released;
}

void KvCache::reserve(int32_t seq, int32_t n_tokens) {
  Seq& s = seqs_.at(seq);
  const int64_t need = static_cast<int64_t>(s.n_past) + n_tokens;
  if (need > opt_.context)
    throw Error("context full: the sequence would hold " + std::to_string(need) + " tokens, the context is " +
                std::to_string(opt_.context) + " (set runtime.context or shorten the prompt)");
  while (static_cast<int64_t>(s.blocks.size()) * opt_.block_tokens < need) {
    if (free_.empty())
      throw Error("kv cache: no free blocks left for " + std::to_string(n_tokens) + " more tokens (the pool holds " +
                  std::to_string(n_blocks_) + " blocks of " + std::to_string(opt_.block_tokens) + " positions for " +
                  std::to_string(opt_.max_seqs) + " sequence(s)" +
                  (opt_.window > 0 ? ", sized for a window of " + std::to_string(opt_.window) + " and steps of " +
                                         std::to_string(opt_.max_step_tokens) + " tokens"
                                   : std::string()) +
                  ")");
    s.blocks.push_back(free_.back());
    free_.pop_back();
  }
}

void KvCache::advance(int32_t seq, int32_t n_tokens) {
  Seq& s = seqs_.at(seq);
  s.n_past += n_tokens;
  // The next query sits at position n_past and reads from n_past - window + 1 on.
  if (opt_.window > 0) release_before(seq, s.n_past - opt_.window + 1);
}

SeqView KvCache::view(int32_t seq) const {
  const Seq& s = seqs_.at(seq);
  return SeqView{s.n_past, s.blocks.data(), static_cast<int32_t>(s.blocks.size())};
}

int32_t KvCache::n_past(int32_t seq) const { return seqs_.at(seq).n_past; }

}  // namespace semline
