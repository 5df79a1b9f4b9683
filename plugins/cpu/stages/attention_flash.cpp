// attention/flash: keys in tiles of `block` positions with an online softmax, so no score matrix
// over the whole context exists. The queries of a tile of tokens of one sequence and of all the
// query heads sharing a kv head meet each key tile together: q K^T is one small matrix product
// over the keys (which stay in cache for all of those queries) and the values are accumulated
// into output rows held in registers.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <semline/error.h>

#include "stages/attention.h"
#include "stages/stages.h"

namespace semline::cpu {
namespace {

constexpr int64_t kMaxRows = 32;  // query rows (tokens x heads of a group) per work item

class AttentionFlash final : public Attention {
 public:
  AttentionFlash(const StageContext& ctx, int64_t block) : Attention(ctx), block_(block) {
    if (block_ < 1) throw Error(label_ + ": block must be at least 1, got " + std::to_string(block_));
    tile_tokens_ = group_ >= kMaxRows ? 1 : kMaxRows / group_;
    rows_ = tile_tokens_ * group_;
    tiles_ = layout_.add(static_cast<size_t>(max_tokens_) * 2 * sizeof(int32_t));
    ScratchLayout per;
    qp_ = per.add(static_cast<size_t>(rows_ * hd_) * 4);
    s_ = per.add(static_cast<size_t>(rows_ * block_) * 4);
    o_ = per.add(static_cast<size_t>(rows_ * hd_) * 4);
    nv_ = per.add(static_cast<size_t>(rows_) * 4);
    nv_seg_ = per.add(static_cast<size_t>(rows_) * 4);
    pos_ = per.add(static_cast<size_t>(rows_) * 4);
    m_ = per.add(static_cast<size_t>(rows_) * 4);
    l_ = per.add(static_cast<size_t>(rows_) * 4);
    worker_bytes_ = per.total();
    workers_ = layout_.add(worker_bytes_ * static_cast<size_t>(be_.host_threads()));
    reserve_scratch();
  }

 private:
  void core(const Work& w) override {
    const Batch& b = w.batch;
    // Tiles: runs of consecutive batch tokens of one sequence, at most tile_tokens_ long.
    int32_t* tiles = reinterpret_cast<int32_t*>(w.scratch + tiles_);
    int64_t n_tiles = 0;
    for (int32_t t = 0; t < b.n_tokens; ++t) {
      int32_t* last = n_tiles > 0 ? tiles + 2 * (n_tiles - 1) : nullptr;
      if (last && b.seq[last[0]] == b.seq[t] && last[1] < tile_tokens_) {
        ++last[1];
      } else {
        tiles[2 * n_tiles] = t;
        tiles[2 * n_tiles + 1] = 1;
        ++n_tiles;
      }
    }
    // Later tiles attend to more keys: hand them out first so the threads finish together.
    be_.pool().run(n_tiles * n_kv_, 1, [&](int64_t i0, int64_t i1, int worker) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t tile = n_tiles - 1 - i / n_kv_, g = i % n_kv_;
        attend(w, tiles[2 * tile], tiles[2 * tile + 1], g, w.scratch + workers_ + worker * worker_bytes_);
      }
    });
  }

  void attend(const Work& w, int32_t t0, int32_t nt, int64_t g, char* scratch) const {
    const Kernels& kern = be_.kernels();
    const Batch& b = w.batch;
    const int64_t qd = n_head_ * hd_, rows = nt * group_;
    float* qp = reinterpret_cast<float*>(scratch + qp_);
    float* s = reinterpret_cast<float*>(scratch + s_);
    float* o = reinterpret_cast<float*>(scratch + o_);
    int32_t* nv = reinterpret_cast<int32_t*>(scratch + nv_);
    int32_t* nv_seg = reinterpret_cast<int32_t*>(scratch + nv_seg_);
    int32_t* pos = reinterpret_cast<int32_t*>(scratch + pos_);
    float* mx = reinterpret_cast<float*>(scratch + m_);
    float* l = reinterpret_cast<float*>(scratch + l_);

    int32_t last = 0;
    for (int64_t r = 0; r < rows; ++r) {  // row r: token t0 + r / group, head g * group + r % group
      const int64_t t = t0 + r / group_, h = g * group_ + r % group_;
      const float* q = w.q + t * w.q_stride + h * hd_;
      for (int64_t d = 0; d < hd_; ++d) qp[r * hd_ + d] = q[d] * scale_;
      pos[r] = b.positions[t];
      if (pos[r] > last) last = pos[r];
      mx[r] = -INFINITY;
      l[r] = 0;
    }
    std::memset(o, 0, static_cast<size_t>(rows * hd_) * 4);
    const SeqView& sv = b.seqs[b.seq[t0]];
    const GemmFn qk = w.k.f16 ? kern.gemm_f16 : kern.gemm_f32;
    const auto pv = w.v.f16 ? kern.pv_f16 : kern.pv_f32;

    for (int32_t p0 = 0; p0 <= last;) {
      const int64_t len = block_ < last + 1 - p0 ? block_ : last + 1 - p0;  // keys of this tile
      // Keys are contiguous only within a cache block: the tile is taken in segments, each with
      // a uniform stride, which share one online-softmax update.
      for (int64_t off = 0; off < len;) {
        const int32_t p = p0 + static_cast<int32_t>(off);
        const int64_t seg = std::min<int64_t>(w.block_tokens - p % w.block_tokens, len - off);
        GemmArgs a;
        a.w = cache_row(w.k, sv, p, w.block_tokens, g);
        a.w_stride = w.k.slot;
        a.x = qp;
        a.x_stride = hd_;
        a.m = rows;
        a.k = hd_;
        a.j0 = 0;
        a.j1 = seg;
        a.y = s + off;
        a.y_stride = block_;
        qk(a);
        off += seg;
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t valid = pos[r] + 1 - p0;  // keys p0 + j with j < valid are causal for row r
        nv[r] = static_cast<int32_t>(valid < 0 ? 0 : (valid > len ? len : valid));
        if (nv[r] == 0) continue;
        float* sr = s + r * block_;
        const float tile_max = kern.max(sr, nv[r]);
        const float m_new = tile_max > mx[r] ? tile_max : mx[r];
        const float c = std::exp(mx[r] - m_new);  // 0 on the first tile (mx = -inf)
        l[r] = l[r] * c + kern.exp_sum(sr, nv[r], m_new);
        if (c != 1.0f) kern.scale(o + r * hd_, c, hd_);
        mx[r] = m_new;
      }
      for (int64_t off = 0; off < len;) {
        const int32_t p = p0 + static_cast<int32_t>(off);
        const int64_t seg = std::min<int64_t>(w.block_tokens - p % w.block_tokens, len - off);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t k = nv[r] - off;
          nv_seg[r] = static_cast<int32_t>(k < 0 ? 0 : (k > seg ? seg : k));
        }
        pv(s + off, block_, nv_seg, rows, cache_row(w.v, sv, p, w.block_tokens, g), w.v.slot, hd_, o, hd_);
        off += seg;
      }
      p0 += static_cast<int32_t>(len);
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = t0 + r / group_, h = g * group_ + r % group_;
      float* dst = w.attn + t * qd + h * hd_;
      const float inv = 1.0f / l[r];
      for (int64_t d = 0; d < hd_; ++d) dst[d] = o[r * hd_ + d] * inv;
    }
  }

  int64_t block_;        // keys per tile
  int64_t tile_tokens_;  // tokens per work item
  int64_t rows_;         // query rows per work item: tile_tokens * group
  size_t tiles_ = 0;     // [max_tokens][2] int32: first token and count of each tile
  size_t workers_ = 0, worker_bytes_ = 0;
  // Inside a worker's area: packed scaled queries [rows][hd], scores [rows][block], output
  // accumulators [rows][hd], causal key count in the tile and in one of its segments, position,
  // running max and sum per row.
  size_t qp_ = 0, s_ = 0, o_ = 0, nv_ = 0, nv_seg_ = 0, pos_ = 0, m_ = 0, l_ = 0;
};

}  // namespace

std::unique_ptr<Stage> make_attention_flash(const StageContext& ctx) {
  return std::make_unique<AttentionFlash>(ctx, ctx.params.values.count("block") ? ctx.params.get_int("block") : 64);
}

}  // namespace semline::cpu
