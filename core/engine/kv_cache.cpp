#include "core/engine/kv_cache.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <string>

#include <spdlog/spdlog.h>

#include <semline/error.h>

namespace semline {
namespace {

// MemAvailable from /proc/meminfo, in bytes; 0 when it cannot be read.
int64_t memory_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (f >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A pool [head_dim, n_kv, block_tokens, n_blocks] stored head-outermost: each kv head has its own
// run of blocks, and within it a block's rows follow one another (nb[2], the slot stride, is one
// row; nb[3], the block stride, a block's rows; nb[1], the head stride, all of them). A decode step
// reads one head's keys position after position: within a block they are contiguous, and so are
// consecutive blocks, which the block manager gives a sequence while its next block is free, so
// the hardware prefetcher streams a head's whole context instead of starting over at every
// block's 1 KiB. With the heads of a position together instead, a Q8_0 row (34
// bytes per 32 values, 68 for a head of 64) would straddle two cache lines per key.
Tensor pool_tensor(DType t, int64_t head_dim, int64_t n_kv, int32_t block_tokens, int64_t n_blocks) {
  Tensor x = make_tensor(t, {head_dim, n_kv, block_tokens, n_blocks});
  x.nb[2] = x.row_bytes();
  x.nb[3] = x.nb[2] * block_tokens;
  x.nb[1] = x.nb[3] * n_blocks;
  return x;
}

}  // namespace

KvCache::KvCache(const KvCacheOptions& opt, const std::vector<Backend*>& layer_backends, int64_t n_head_kv,
                 int64_t head_dim)
    : opt_(opt) {
  if (opt.block_tokens <= 0 || opt.context <= 0 || opt.max_seqs <= 0 || opt.window < 0 || opt.max_step_tokens <= 0)
    throw Error("kv cache: block_tokens, context, max_seqs and max_step_tokens must be > 0, window >= 0");
  if (head_dim % dtype_block_size(opt.dtype) != 0)
    throw Error("kv_cache.dtype = " + lower(dtype_name(opt.dtype)) + " stores a head's keys and values in blocks of " +
                std::to_string(dtype_block_size(opt.dtype)) + "; this model's head size is " + std::to_string(head_dim) +
                " (use f16 or f32)");
  const Tensor one = pool_tensor(opt.dtype, head_dim, n_head_kv, opt.block_tokens, 1);
  const size_t cached_layers = static_cast<size_t>(
      std::count_if(layer_backends.begin(), layer_backends.end(), [](const Backend* b) { return b != nullptr; }));
  block_bytes_ = static_cast<size_t>(one.span_bytes()) * 2 * cached_layers;

  int64_t blocks_per_seq = (opt.context + opt.block_tokens - 1) / opt.block_tokens;
  if (opt.window > 0) {
    // A step reads back window - 1 positions and adds up to max_step_tokens: that span touches
    // at most span / block_tokens + 1 blocks wherever it starts, and a sequence holds no others.
    const int64_t span = static_cast<int64_t>(opt.window) - 1 + opt.max_step_tokens;
    blocks_per_seq = std::min(blocks_per_seq, (span + opt.block_tokens - 1) / opt.block_tokens + 1);
  }
  int64_t n_blocks = opt.n_blocks;
  // A line without attention (Mamba) caches no keys: its blocks only count positions.
  if (n_blocks <= 0 && block_bytes_ == 0) n_blocks = blocks_per_seq * opt.max_seqs;
  if (n_blocks <= 0 && opt.size_bytes > 0) {
    n_blocks = opt.size_bytes / static_cast<int64_t>(block_bytes_);
    if (n_blocks < 1)
      throw Error("kv_cache.size_mib: " + std::to_string(opt.size_bytes >> 20) + " MiB holds no block of " +
                  std::to_string(opt.block_tokens) + " positions (" + std::to_string(block_bytes_) + " bytes)");
  }
  if (n_blocks <= 0) {
    n_blocks = blocks_per_seq * opt.max_seqs;
    const int64_t cap = memory_available() / 2 / static_cast<int64_t>(block_bytes_);
    if (cap > 0 && n_blocks > cap) {
      n_blocks = std::max(cap, blocks_per_seq);
      spdlog::info("kv cache: {} sequences of {} tokens would take more than half the free memory; {} blocks of {} "
                   "(set kv_cache.size_mib or kv_cache.blocks to choose)",
                   opt.max_seqs, opt.context, n_blocks, opt.block_tokens);
    }
  }
  opt_.n_blocks = n_blocks;
  blocks_ = std::make_unique<BlockManager>(
      BlockManagerOptions{opt.block_tokens, n_blocks, opt.window, opt.prefix_caching});
  for (Backend* b : layer_backends) {
    KvLayer l;
    l.block_tokens = opt.block_tokens;
    layers_.push_back(l);
    if (!b) continue;
    for (Tensor* t : {&layers_.back().k, &layers_.back().v}) {
      *t = pool_tensor(opt.dtype, head_dim, n_head_kv, opt.block_tokens, n_blocks);
      const size_t bytes = static_cast<size_t>(t->span_bytes());
      buffers_.push_back(b->alloc(bytes));
      t->buffer = buffers_.back().get();
      t->host = t->buffer->host();
      bytes_ += bytes;
    }
  }
}

void KvCache::reserve(int32_t seq, int32_t n_tokens) {
  const int64_t need = static_cast<int64_t>(n_past(seq)) + n_tokens;
  if (need > opt_.context)
    throw Error("context full: the sequence would hold " + std::to_string(need) + " tokens, the context is " +
                std::to_string(opt_.context) + " (set runtime.context or shorten the prompt)");
  if (!blocks_->try_reserve(seq, n_tokens))
    throw Error("kv cache: no free blocks left for " + std::to_string(n_tokens) + " more tokens (the pool holds " +
                std::to_string(opt_.n_blocks) + " blocks of " + std::to_string(opt_.block_tokens) + " positions" +
                (opt_.window > 0 ? ", sized for a window of " + std::to_string(opt_.window) + " and steps of " +
                                       std::to_string(opt_.max_step_tokens) + " tokens"
                                 : std::string()) +
                "; set kv_cache.size_mib or kv_cache.blocks for more)");
}

int32_t KvCache::used_blocks(int32_t seq) const {
  const SeqView v = view(seq);
  return static_cast<int32_t>(std::count_if(v.blocks, v.blocks + v.n_blocks, [](int32_t b) { return b >= 0; }));
}

}  // namespace semline
