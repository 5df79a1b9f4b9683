// Micro-benchmark of one decode step's attention over a deep KV cache, per cache dtype: for each
// layer and kv head, one query row's scores against every cached key (qk_row), the softmax of a
// tile, and the values weighted into the output row (pv), over a pool laid out as the KV cache
// lays it out (blocks of positions, each kv head's blocks together, the blocks handed out in
// order or scattered) in memory mapped as the cpu backend maps it (huge pages where granted; `--pages
// small` for 4 KiB pages, which slow the f16 cache far more than the q8_0 one). It isolates what a
// q8_0 cache changes from the rest of a decode step. Each figure is the best of several runs,
// since other processes only ever slow one down; ns per key and head is thread time (wall time
// times threads).
//
//   semline-kv-bench [--isa scalar|avx2|avx512|amx] [--depth N] [--layers L] [--heads H]
//                    [--head-dim D] [--block N] [--tile N] [--order shuffled|sequential] [--threads N]
//                    [--pages huge|small] [--seconds S]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu_backend.h"
#include "kernels/kernels.h"

using namespace semline;
using namespace semline::cpu;

namespace {

struct Shape {
  int64_t depth = 16384, layers = 12, heads = 12, hd = 64, block = 16, tile = 64, threads = 1;
  bool shuffled = true;  // the blocks in a random order, else one after the other
  bool huge = true;      // the cache's memory as the cpu backend maps it (huge pages where granted)
};

// A pool of blocks of `block` positions, each kv head's blocks of a layer one after another (as
// the KV cache keeps them), handed out in order (a fresh cache) or shuffled (a cache after a while
// of serving).
struct Pool {
  size_t row = 0, head_bytes = 0;  // head_bytes: one head's rows of one block
  std::vector<char> small;  // 4 KiB pages
  AlignedBlock huge;
  char* base = nullptr;
  size_t size = 0;
  std::vector<int64_t> order;  // block of each run of positions, per layer
  const char* rows(const Shape& s, int64_t layer, int64_t b, int64_t head) const {
    const int64_t blocks = s.depth / s.block;
    return base + static_cast<size_t>((layer * s.heads + head) * blocks + order[static_cast<size_t>(layer * blocks + b)]) *
                      head_bytes;
  }
  // Blocks from b (before end) that follow one another in the pool: one stretch to read.
  int64_t run(const Shape& s, int64_t layer, int64_t b, int64_t end) const {
    const size_t at = static_cast<size_t>(layer * (s.depth / s.block));
    int64_t n = 1;
    while (b + n < end && order[at + b + n] == order[at + b + n - 1] + 1) ++n;
    return n;
  }
};

Pool make_pool(const Kernels& kern, const Shape& s, DType dtype, std::mt19937& rng) {
  Pool p;
  p.row = static_cast<size_t>(dtype == DType::Q8_0 ? s.hd / 32 * 34 : s.hd * (dtype == DType::F16 ? 2 : 4));
  p.head_bytes = p.row * static_cast<size_t>(s.block);
  const int64_t n_blocks = s.layers * (s.depth / s.block);
  p.size = p.head_bytes * static_cast<size_t>(s.heads * n_blocks);
  if (s.huge) {
    p.huge = AlignedBlock(p.size);
    p.base = static_cast<char*>(p.huge.data());
  } else {
    p.small.resize(p.size);
    p.base = p.small.data();
  }
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(s.hd));
  for (size_t off = 0; off < p.size; off += p.row) {
    for (float& v : x) v = nd(rng);
    char* dst = p.base + off;
    if (dtype == DType::Q8_0) kern.to_q8_0(x.data(), dst, s.hd);
    else if (dtype == DType::F16) kern.to_f16(x.data(), reinterpret_cast<uint16_t*>(dst), s.hd);
    else std::copy(x.begin(), x.end(), reinterpret_cast<float*>(dst));
  }
  // Each layer's blocks numbered 0..blocks-1 within it (a layer's pool of its own).
  const int64_t blocks = s.depth / s.block;
  p.order.resize(static_cast<size_t>(n_blocks));
  for (int64_t l = 0; l < s.layers; ++l) {
    const auto first = p.order.begin() + l * blocks;
    std::iota(first, first + blocks, 0);
    if (s.shuffled) std::shuffle(first, first + blocks, rng);
  }
  return p;
}

void prefetch(const Shape& s, const Pool& pool, int64_t layer, int64_t head, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    const char* rows = pool.rows(s, layer, b, head);
    for (size_t off = 0; off < pool.head_bytes; off += 64) __builtin_prefetch(rows + off);
  }
}

// One decode step's heads h = first, first + every, ... of every layer over every position, as the
// tiled core walks them: tiles of `tile` positions, this tile's values and the next tile's keys
// asked for ahead, the scores of a tile over its runs of consecutive blocks in one call, one
// online-softmax update per tile, then its values.
void walk(const Kernels& kern, const Shape& s, DType dtype, const Pool& k, const Pool& v, const float* q, float* scores,
          float* out, int64_t first, int64_t every) {
  const Kernels::QkRowFn qk = kern.qk_row(dtype);
  const auto pv = dtype == DType::Q8_0 ? kern.pv_q8_0 : dtype == DType::F16 ? kern.pv_f16 : kern.pv_f32;
  const int64_t per_tile = std::max<int64_t>(1, s.tile / s.block), blocks = s.depth / s.block;
  std::vector<const char*> starts(static_cast<size_t>(per_tile));
  std::vector<int32_t> len(static_cast<size_t>(per_tile));
  // A tile's runs of one head's rows in pool p.
  auto runs = [&](const Pool& p, int64_t l, int64_t h, int64_t b0, int64_t b1) {
    int32_t n = 0;
    for (int64_t b = b0, r; b < b1; b += r, ++n) {
      r = p.run(s, l, b, b1);
      starts[static_cast<size_t>(n)] = p.rows(s, l, b, h);
      len[static_cast<size_t>(n)] = static_cast<int32_t>(r * s.block);
    }
    return RowRuns{starts.data(), len.data(), n, p.row};
  };
  for (int64_t l = 0; l < s.layers; ++l)
    for (int64_t h = first; h < s.heads; h += every) {
      float* o = out + h * s.hd;
      std::fill(o, o + s.hd, 0.0f);
      float m = -INFINITY, sum = 0;
      for (int64_t b0 = 0; b0 < blocks; b0 += per_tile) {
        const int64_t b1 = std::min(blocks, b0 + per_tile), n = (b1 - b0) * s.block;
        prefetch(s, v, l, h, b0, b1);
        prefetch(s, k, l, h, b1, std::min(blocks, b1 + per_tile));
        qk(q + h * s.hd, runs(k, l, h, b0, b1), s.hd, scores);
        const float tile_max = kern.max(scores, n), m_new = std::max(m, tile_max);
        const float c = std::exp(m - m_new);
        sum = sum * c + kern.exp_sum(scores, n, m_new);
        if (c != 1.0f) kern.scale(o, c, s.hd);
        m = m_new;
        const int32_t nv = static_cast<int32_t>(n);
        pv(scores, nv, &nv, 1, runs(v, l, h, b0, b1), s.hd, o, s.hd);
      }
    }
}

// The step on s.threads threads, each taking every threads-th head (a thread pool's even share).
void step(const Kernels& kern, const Shape& s, DType dtype, const Pool& k, const Pool& v, const float* q,
          std::vector<std::vector<float>>& scores, float* out) {
  std::vector<std::thread> others;
  for (int64_t t = 1; t < s.threads; ++t)
    others.emplace_back([&, t] { walk(kern, s, dtype, k, v, q, scores[t].data(), out, t, s.threads); });
  walk(kern, s, dtype, k, v, q, scores[0].data(), out, 0, s.threads);
  for (std::thread& t : others) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  Isa isa = best_isa();
  Shape s;
  double budget = 3.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const char* val = argv[i + 1];
    if (key == "--isa") {
      const auto x = isa_from_name(val);
      if (!x || !isa_supported(*x)) {
        std::fprintf(stderr, "isa '%s' is not available here; best: %s\n", val, isa_name(best_isa()));
        return 2;
      }
      isa = *x;
    } else if (key == "--depth") s.depth = std::atoll(val);
    else if (key == "--layers") s.layers = std::atoll(val);
    else if (key == "--heads") s.heads = std::atoll(val);
    else if (key == "--head-dim") s.hd = std::atoll(val);
    else if (key == "--block") s.block = std::atoll(val);
    else if (key == "--tile") s.tile = std::atoll(val);
    else if (key == "--order") {
      if (std::string(val) != "shuffled" && std::string(val) != "sequential") {
        std::fprintf(stderr, "--order %s: expected shuffled or sequential\n", val);
        return 2;
      }
      s.shuffled = std::string(val) == "shuffled";
    }
    else if (key == "--pages") {
      if (std::string(val) != "huge" && std::string(val) != "small") {
        std::fprintf(stderr, "--pages %s: expected huge or small\n", val);
        return 2;
      }
      s.huge = std::string(val) == "huge";
    }
    else if (key == "--threads") s.threads = std::atoll(val);
    else if (key == "--seconds") budget = std::atof(val);
    else {
      std::fprintf(stderr, "unknown option %s; see the comment at the top of kv_bench.cpp\n", key.c_str());
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "%s takes a value\n", argv[argc - 1]);
    return 2;
  }
  if (s.hd < 32 || s.hd % 32 != 0 || s.block < 1 || s.tile < 1 || s.depth < s.block || s.depth % s.block != 0 ||
      s.layers < 1 || s.heads < 1 || s.threads < 1 || budget <= 0) {
    std::fprintf(stderr, "--head-dim must be a positive multiple of 32, --depth a multiple of --block, and every "
                         "number above 0\n");
    return 2;
  }
  const Kernels& kern = kernels_for(isa);
  std::printf("isa %s, depth %lld, %lld layers x %lld kv heads of %lld, blocks of %lld positions, tiles of %lld, "
              "%lld thread(s)\n", isa_name(isa), static_cast<long long>(s.depth), static_cast<long long>(s.layers),
              static_cast<long long>(s.heads), static_cast<long long>(s.hd), static_cast<long long>(s.block),
              static_cast<long long>(s.tile), static_cast<long long>(s.threads));
  std::printf("%-6s %12s %14s %12s\n", "cache", "ms / step", "ns / key+head", "GB/s");
  std::mt19937 rng(7);
  std::vector<float> q(static_cast<size_t>(s.heads * s.hd)), out(static_cast<size_t>(s.heads * s.hd));
  std::vector<std::vector<float>> scores(static_cast<size_t>(s.threads),
                                         std::vector<float>(static_cast<size_t>(std::max(s.tile, s.block))));
  std::normal_distribution<float> nd(0.0f, 0.125f);
  for (float& x : q) x = nd(rng);
  for (DType dtype : {DType::F16, DType::Q8_0}) {
    const Pool k = make_pool(kern, s, dtype, rng), v = make_pool(kern, s, dtype, rng);
    step(kern, s, dtype, k, v, q.data(), scores, out.data());  // warm the pages
    double best = 1e30;
    const auto start = std::chrono::steady_clock::now();
    do {
      const auto t0 = std::chrono::steady_clock::now();
      step(kern, s, dtype, k, v, q.data(), scores, out.data());
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    } while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < budget);
    const double keys = static_cast<double>(s.depth * s.layers * s.heads);
    std::printf("%-6s %12.2f %14.2f %12.2f\n", dtype_name(dtype), best * 1e3,
                best * 1e9 * static_cast<double>(s.threads) / keys,
                static_cast<double>(k.size + v.size) / best / 1e9);
  }
  return 0;
}
