// The cpu backend's tiled attention core: keys in tiles with an online softmax, so no score
// matrix over the whole context exists; the core of attention/flash, sliding_window and
// block_sparse, which differ only in which keys of a tile a query meets (the mask's keys_in_tile).
//
// The queries of a run of tokens of one sequence and of all the query heads sharing a kv head
// meet each key tile together: q K^T is one small matrix product over the keys (which stay in
// cache for all of those queries) and the values are accumulated into output rows held in
// registers. Tiles are the multiples of the tile size, cut to the keys the run's queries read, so
// a key block no query of the run reads is never touched.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <semline/error.h>

#include "ops/attention_cores.h"
#include "stations/stations.h"

namespace semline::cpu {
namespace {

constexpr int64_t kMaxRows = 32;  // query rows (tokens x heads of a group) per work item

// Asks for the cache lines of one kv head's rows at positions [p0, p1) ahead of their use. A
// head's rows are contiguous only while the sequence's blocks follow one another in the pool; at
// every other block the hardware prefetcher starts over, and a decode step, which does little work
// per key, would wait on its first lines. The lines are asked for one tile ahead.
void prefetch_rows(const KvPool& pool, const SeqView& sv, int32_t block_tokens, int64_t g, int32_t p0, int32_t p1,
                   size_t row_bytes) {
  for (int32_t p = p0; p < p1;) {
    const int32_t seg = pool.run_at(sv, p, block_tokens, p1);
    const char* row = pool.row_at(sv, p, block_tokens, g);
    for (int32_t s = 0; s < seg; ++s, row += pool.slot)
      for (size_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(row + off);
    p += seg;
  }
}

}  // namespace

TiledCore::TiledCore(CpuBackend& be, const StageContext& ctx, const stations::AttentionShape& a,
                     const stations::CoreSpec& spec)
    : be_(be), mask_(*spec.mask), n_kv_(a.n_kv), hd_(a.head_dim), group_(a.n_head / a.n_kv),
      scale_(spec.scale > 0 ? spec.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(a.head_dim)))),
      softcap_(spec.softcap), tile_(spec.tile) {
  if (tile_ < 1)
    throw Error(stations::station_label(ctx) + ": block must be at least 1, got " + std::to_string(tile_));
  tile_tokens_ = group_ >= kMaxRows ? 1 : kMaxRows / group_;
  rows_ = tile_tokens_ * group_;
  ScratchLayout layout;
  layout.add(spec.scratch_from);  // the station's own scratch comes first
  tiles_ = layout.add(static_cast<size_t>(spec.max_tokens) * 2 * sizeof(int32_t));
  ScratchLayout per;
  qp_ = per.add(static_cast<size_t>(rows_ * hd_) * 4);
  s_ = per.add(static_cast<size_t>(rows_ * tile_) * 4);
  o_ = per.add(static_cast<size_t>(rows_ * hd_) * 4);
  lo_ = per.add(static_cast<size_t>(rows_) * 4);
  nv_ = per.add(static_cast<size_t>(rows_) * 4);
  pos_ = per.add(static_cast<size_t>(rows_) * 4);
  m_ = per.add(static_cast<size_t>(rows_) * 4);
  l_ = per.add(static_cast<size_t>(rows_) * 4);
  k_first_ = per.add(static_cast<size_t>(tile_) * sizeof(const char*));
  k_len_ = per.add(static_cast<size_t>(tile_) * 4);
  v_first_ = per.add(static_cast<size_t>(tile_) * sizeof(const char*));
  v_len_ = per.add(static_cast<size_t>(tile_) * 4);
  worker_bytes_ = per.total();
  workers_ = layout.add(worker_bytes_ * static_cast<size_t>(be_.host_threads()));
  be_.workspace().reserve(layout.total());
}

void TiledCore::run(const Step& step, const Tensor& q, const Tensor& attn) {
  const CoreStep w = core_step(be_, step, q, attn);
  const Batch& b = w.batch;
  // Runs: consecutive batch tokens of one sequence, at most tile_tokens_, whose key ranges
  // [first_key, pos] join into one range. Every key a run's tiles cover is then read by one of
  // its queries, and so lies in a cache block check_positions has seen.
  int32_t* tiles = reinterpret_cast<int32_t*>(w.scratch + tiles_);
  int64_t n_tiles = 0;
  int32_t lo = 0, hi = -1;  // the key range of the last run
  for (int32_t t = 0; t < b.n_tokens; ++t) {
    const int32_t pos = b.positions[t], first = mask_.first_key(pos);
    int32_t* last = n_tiles > 0 ? tiles + 2 * (n_tiles - 1) : nullptr;
    if (last && b.seq[last[0]] == b.seq[t] && last[1] < tile_tokens_ && first <= hi + 1 && pos + 1 >= lo) {
      ++last[1];
      lo = std::min(lo, first);
      hi = std::max(hi, pos);
    } else {
      tiles[2 * n_tiles] = t;
      tiles[2 * n_tiles + 1] = 1;
      ++n_tiles;
      lo = first;
      hi = pos;
    }
  }
  // Later runs attend to more keys: hand them out first so the threads finish together.
  be_.pool().run(n_tiles * n_kv_, 1, [&](int64_t i0, int64_t i1, int worker) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t tile = n_tiles - 1 - i / n_kv_, g = i % n_kv_;
      attend(w, tiles[2 * tile], tiles[2 * tile + 1], g, w.scratch + workers_ + worker * worker_bytes_);
    }
  });
}

void TiledCore::attend(const CoreStep& w, int32_t t0, int32_t nt, int64_t g, char* scratch) const {
  const Kernels& kern = be_.kernels();
  const Batch& b = w.batch;
  const int64_t rows = nt * group_;
  float* qp = reinterpret_cast<float*>(scratch + qp_);
  float* s = reinterpret_cast<float*>(scratch + s_);
  float* o = reinterpret_cast<float*>(scratch + o_);
  int32_t* lo = reinterpret_cast<int32_t*>(scratch + lo_);
  int32_t* nv = reinterpret_cast<int32_t*>(scratch + nv_);
  const char** k_first = reinterpret_cast<const char**>(scratch + k_first_);
  const char** v_first = reinterpret_cast<const char**>(scratch + v_first_);
  int32_t* k_len = reinterpret_cast<int32_t*>(scratch + k_len_);
  int32_t* v_len = reinterpret_cast<int32_t*>(scratch + v_len_);
  int32_t* pos = reinterpret_cast<int32_t*>(scratch + pos_);
  float* mx = reinterpret_cast<float*>(scratch + m_);
  float* l = reinterpret_cast<float*>(scratch + l_);

  int32_t first = INT32_MAX, last = 0;  // the run's key range
  for (int64_t r = 0; r < rows; ++r) {  // row r: token t0 + r / group, head g * group + r % group
    const int64_t t = t0 + r / group_, h = g * group_ + r % group_;
    const float* q = w.q + t * w.q_stride + h * hd_;
    for (int64_t d = 0; d < hd_; ++d) qp[r * hd_ + d] = q[d] * scale_;
    // Q8_0 keys meet an 8-bit query in qk_row; rounded here, every row of a run meets them so.
    if (w.k.dtype == DType::Q8_0) round_q8_blocks(qp + r * hd_, hd_);
    pos[r] = b.positions[t];
    last = std::max(last, pos[r]);
    first = std::min(first, mask_.first_key(pos[r]));
    mx[r] = -INFINITY;
    l[r] = 0;
  }
  std::memset(o, 0, static_cast<size_t>(rows * hd_) * 4);
  const SeqView& sv = b.seqs[b.seq[t0]];
  const size_t k_row = static_cast<size_t>(dtype_row_bytes(w.k.dtype, hd_)),
               v_row = static_cast<size_t>(dtype_row_bytes(w.v.dtype, hd_));
  const GemmFn qk = w.k.dtype == DType::Q8_0 ? kern.gemm_q8_0_rows : kern.gemm(w.k.dtype);
  const Kernels::QkRowFn qk_row = kern.qk_row(w.k.dtype);  // one query row: a decode step without GQA
  const auto pv = w.v.dtype == DType::Q8_0 ? kern.pv_q8_0 : w.v.dtype == DType::F16 ? kern.pv_f16 : kern.pv_f32;

  for (int32_t p0 = first; p0 <= last;) {
    const int32_t p1 = static_cast<int32_t>(std::min<int64_t>((p0 / tile_ + 1) * tile_, last + 1));
    bool any = false;
    for (int64_t r = 0; r < rows; ++r) {  // row r meets keys p0 + j, lo[r] <= j < nv[r]
      const stations::KeyRange k = mask_.keys_in_tile(pos[r], p0, p1);
      lo[r] = std::max(k.lo, p0) - p0;
      nv[r] = std::min(k.hi, p1) - p0;
      if (nv[r] <= lo[r]) lo[r] = nv[r] = 0;
      any = any || nv[r] > 0;
    }
    if (!any) {  // masked out for the whole run: its keys are never read
      p0 = p1;
      continue;
    }
    // This tile's values (read after its scores) and the next tile's keys.
    prefetch_rows(w.v, sv, w.block_tokens, g, p0, p1, v_row);
    prefetch_rows(w.k, sv, w.block_tokens, g, p1, static_cast<int32_t>(std::min<int64_t>(p1 + tile_, last + 1)), k_row);
    // Keys are contiguous only within runs of consecutive cache blocks: the tile is taken as its
    // runs, each with a uniform stride, which share one online-softmax update.
    const RowRuns keys = w.k.runs(sv, w.block_tokens, g, p0, p1, k_first, k_len);
    if (rows == 1) {  // the query in registers while the keys stream past
      qk_row(qp, keys, hd_, s);
    } else {
      for (int32_t i = 0, off = 0; i < keys.n; off += keys.len[i++]) {
        GemmArgs a;
        a.w = keys.first[i];
        a.w_stride = keys.stride;
        a.x = qp;
        a.x_stride = hd_;
        a.m = rows;
        a.k = hd_;
        a.j0 = 0;
        a.j1 = keys.len[i];
        a.y = s + off;
        a.y_stride = tile_;
        qk(a);
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      if (nv[r] == 0) continue;
      float* sr = s + r * tile_;
      const int32_t n = nv[r] - lo[r];
      if (softcap_ > 0)
        for (float* v = sr + lo[r]; v < sr + nv[r]; ++v) *v = softcap_ * std::tanh(*v / softcap_);
      const float tile_max = kern.max(sr + lo[r], n);
      const float m_new = tile_max > mx[r] ? tile_max : mx[r];
      const float c = std::exp(mx[r] - m_new);  // 0 on the first tile (mx = -inf)
      l[r] = l[r] * c + kern.exp_sum(sr + lo[r], n, m_new);
      // The values are summed over j < nv[r]: the masked keys before lo[r] weigh nothing.
      std::fill(sr, sr + lo[r], 0.0f);
      if (c != 1.0f) kern.scale(o + r * hd_, c, hd_);
      mx[r] = m_new;
    }
    pv(s, tile_, nv, rows, w.v.runs(sv, w.block_tokens, g, p0, p1, v_first, v_len), hd_, o, hd_);
    p0 = p1;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = t0 + r / group_, h = g * group_ + r % group_;
    float* dst = w.attn + t * w.attn_stride + h * hd_;
    const float inv = 1.0f / l[r];
    for (int64_t d = 0; d < hd_; ++d) dst[d] = o[r * hd_ + d] * inv;
  }
}

}  // namespace semline::cpu
