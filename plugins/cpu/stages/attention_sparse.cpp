// attention/block_sparse, BigBird-like: keys in blocks of `block` positions; a query at position
// p, in block b = p / block, attends causally (keys <= p) to every block j <= b with
//   b - local < j            the local band, its own block included,
//   j < global               the first blocks (global tokens, an attention sink),
//   j % stride == stride - 1 every stride-th block (stride 0: none).
// An approximation of dense attention; equal to it when the pattern covers every block (local or
// global at least the number of blocks of the context, or stride 1).
#include <algorithm>

#include <semline/error.h>

#include "stages/attention_tiled.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

class AttentionSparse final : public TiledAttention {
 public:
  AttentionSparse(const StageContext& ctx, int64_t block, int64_t local, int64_t global, int64_t stride)
      : TiledAttention(ctx, block), local_(local), global_(global), stride_(stride) {
    if (local_ < 1 || global_ < 0 || stride_ < 0)
      throw Error(label_ + ": local " + std::to_string(local_) + " must be >= 1, global " + std::to_string(global_) +
                  " and stride " + std::to_string(stride_) + " >= 0");
  }

  // Only the local band reads back a bounded distance: local blocks reach local * block - 1
  // positions behind a query at most.
  int32_t kv_window() const override {
    return global_ == 0 && stride_ == 0 ? static_cast<int32_t>(std::min<int64_t>(local_ * tile_, INT32_MAX)) : 0;
  }

 private:
  bool allowed(int64_t b, int64_t j) const {
    return j <= b && (j > b - local_ || j < global_ || (stride_ > 0 && j % stride_ == stride_ - 1));
  }
  int32_t first_key(int32_t pos) const override {
    if (global_ > 0 || stride_ > 0) return 0;
    const int64_t b = pos / tile_;
    return static_cast<int32_t>(std::max<int64_t>(0, b - local_ + 1) * tile_);
  }
  KeyRange keys_in_tile(int32_t pos, int32_t p0, int32_t p1) const override {
    // Tiles are the blocks themselves (the tile size is `block`), so p0 / block names the block.
    if (!allowed(pos / tile_, p0 / tile_)) return {0, 0};
    return {p0, std::min(p1, pos + 1)};
  }
  double keys_read(int32_t pos) const override {
    const int64_t b = pos / tile_;
    double keys = static_cast<double>(pos - b * tile_ + 1);  // its own block, up to pos
    for (int64_t j = 0; j < b; ++j)
      if (allowed(b, j)) keys += static_cast<double>(tile_);
    return keys;
  }

  int64_t local_, global_, stride_;
};

}  // namespace

std::unique_ptr<Stage> make_attention_sparse(const StageContext& ctx) {
  return std::make_unique<AttentionSparse>(ctx, int_param(ctx, "block", kDefaultBlock), int_param(ctx, "local", kDefaultLocal),
                                           int_param(ctx, "global", kDefaultGlobal), int_param(ctx, "stride", kDefaultStride));
}

}  // namespace semline::cpu
