// Micro-benchmark of the cpu linear maps: matrix x vector (decode, memory-bound) and matrix x
// matrix (prefill, compute-bound) per weight dtype, at model-like shapes, on 1 and 2 threads.
// Reports weight bytes streamed per second (from memory, and hot in cache) and arithmetic rate.
// Timing includes the activation quantisation and the dispatch over the pool, as a stage pays
// them; each figure is the best of several runs, since other processes only ever slow one down.
//
//   semline-cpu-bench [--isa scalar|avx2|avx512|amx] [--prefetch software|hardware] [--m ROWS]
//                     [--threads N[,N...]] [--seconds S] [--dtypes f32,f16,bf16,q8_0,q4_0]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <semline/codec.h>

#include "backend/cpu_backend.h"
#include "ops/linear.h"

using namespace semline;
using namespace semline::cpu;

namespace {

struct Shape {
  int64_t n_in, n_out;
  const char* what;
};

constexpr DType kDtypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

double seconds_per_call(double budget, const std::function<void()>& fn) {
  fn();  // warm caches and the pool
  double best = 1e30;
  constexpr int kReps = 7;
  for (int rep = 0; rep < kReps; ++rep) {
    int64_t calls = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      fn();
      ++calls;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (elapsed < budget / kReps);
    best = std::min(best, elapsed / calls);
  }
  return best;
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> v;
  for (const char* p = s; *p;) {
    v.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  Isa isa = best_isa();
  Prefetch prefetch = default_prefetch();
  int64_t m_prefill = 128;
  std::vector<int> thread_counts = {1, 2};
  double budget = 0.6;
  std::vector<DType> dtypes(std::begin(kDtypes), std::end(kDtypes));
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--isa") {
      auto x = isa_from_name(argv[i + 1]);
      if (!x || !isa_supported(*x)) {
        std::fprintf(stderr, "isa '%s' is not available here; best: %s\n", argv[i + 1], isa_name(best_isa()));
        return 2;
      }
      isa = *x;
    } else if (k == "--prefetch") {
      auto p = prefetch_from_name(argv[i + 1]);
      if (!p) {
        std::fprintf(stderr, "unknown prefetch '%s'; valid: software, hardware\n", argv[i + 1]);
        return 2;
      }
      prefetch = *p;
    } else if (k == "--m") {
      m_prefill = std::max<int64_t>(1, std::atoll(argv[i + 1]));
    } else if (k == "--threads") {
      thread_counts = parse_list(argv[i + 1]);
    } else if (k == "--dtypes") {
      dtypes.clear();
      for (std::string_view rest = argv[i + 1]; !rest.empty();) {
        const std::string_view name = rest.substr(0, rest.find(','));
        rest.remove_prefix(std::min(rest.size(), name.size() + 1));
        const DType* t = std::find_if(std::begin(kDtypes), std::end(kDtypes), [&](DType d) {
          std::string n = dtype_name(d);
          for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          return n == name;
        });
        if (t == std::end(kDtypes)) {
          std::fprintf(stderr, "unknown dtype '%.*s'; valid: f32, f16, bf16, q8_0, q4_0\n", static_cast<int>(name.size()),
                       name.data());
          return 2;
        }
        dtypes.push_back(*t);
      }
    } else if (k == "--seconds") {
      budget = std::max(0.05, std::atof(argv[i + 1]));
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }

  const Shape shapes[] = {{768, 2048, "ffn up, 134M"}, {2048, 8192, "ffn up, 1B"}, {768, 32000, "head, 134M"}};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  std::printf("isa %s (Q8_0, Q4_0: %s), %s prefetch; matmul rows m = %lld\n", isa_name(isa),
              kernels_for(isa).repacked(DType::Q8_0) ? "weights repacked in 16-row tiles" : "the file's blocks",
              prefetch_name(prefetch), static_cast<long long>(m_prefill));
  for (int threads : thread_counts) {
    // A dispatch of empty chunks, one per thread: the fixed cost every kernel call pays.
    CpuBackend be(threads, isa, prefetch);
    const double t = seconds_per_call(budget / 4, [&] { be.pool().run(threads, 1, [](int64_t, int64_t, int) {}); });
    std::printf("dispatch over %d thread(s): %.2f us\n", threads, t * 1e6);
  }
  std::printf("matvec: weights streamed from memory (copies beyond the caches); hot: the same matrix\n"
              "again and again, from cache, to show the kernel's own rate\n");
  std::printf("%-6s %-16s %3s | %9s %8s %8s | %8s | %9s %8s\n", "dtype", "W [out x in]", "thr", "matvec us",
              "GB/s", "GFLOP/s", "hot GB/s", "matmul ms", "GFLOP/s");
  for (const Shape& sh : shapes) {
    std::vector<float> wf(static_cast<size_t>(sh.n_in));
    std::vector<float> x(static_cast<size_t>(m_prefill * sh.n_in));
    for (float& v : x) v = normal(rng);
    std::vector<float> y(static_cast<size_t>(m_prefill * sh.n_out));
    for (DType dt : dtypes) {
      const size_t row = static_cast<size_t>(dtype_row_bytes(dt, sh.n_in));
      const size_t bytes = row * static_cast<size_t>(sh.n_out);
      // Decode streams every weight from memory once per token: the matrix x vector timing cycles
      // through copies of the matrix that together exceed the caches (1 GiB).
      const size_t copies = std::max<size_t>(1, std::min<size_t>(256, (size_t{1} << 30) / bytes));
      std::vector<char> w(bytes * copies);
      for (int64_t r = 0; r < sh.n_out; ++r) {
        for (float& v : wf) v = normal(rng) * 0.05f;
        quantize_row(dt, wf.data(), w.data() + r * row, sh.n_in);
      }
      for (size_t c = 1; c < copies; ++c) std::memcpy(w.data() + c * bytes, w.data(), bytes);
      // One map per copy, made as a stage binds its weights: repacked where the kernels read
      // their own layout (the file's copies are then not needed any more).
      std::vector<Linear> lins;
      {
        CpuBackend be(thread_counts.empty() ? 1 : *std::max_element(thread_counts.begin(), thread_counts.end()), isa);
        for (size_t c = 0; c < copies; ++c)
          lins.push_back(Linear::over(be, dt, sh.n_in, sh.n_out, w.data() + c * bytes, row));
      }
      if (lins[0].repacked) std::vector<char>().swap(w);
      const Linear* lin = &lins[0];
      size_t next = 0;
      for (int threads : thread_counts) {
        CpuBackend be(threads, isa, prefetch);
        ScratchLayout layout;
        QRowsLayout ql;
        ql.plan(layout, m_prefill, sh.n_in);
        AlignedBlock scratch(layout.total());
        const QRows q = ql.at(static_cast<char*>(scratch.data()));
        auto call = [&](int64_t m) {
          Rows in{x.data(), sh.n_in, nullptr};
          if (lin->quantized()) {
            quantize_rows(be, x.data(), sh.n_in, m, sh.n_in, q);
            in.q = &q;
          }
          const MatOp op{lin, in, y.data(), sh.n_out, false};
          run_matmuls(be, &op, 1, m);
        };
        const double tv = seconds_per_call(budget, [&] {
          lin = &lins[next++ % copies];
          call(1);
        });
        lin = &lins[0];
        const double th = seconds_per_call(budget, [&] { call(1); });
        const double tm = seconds_per_call(budget, [&] { call(m_prefill); });
        const double flop1 = 2.0 * sh.n_in * sh.n_out;
        char name[32];
        std::snprintf(name, sizeof name, "%lldx%lld", static_cast<long long>(sh.n_out), static_cast<long long>(sh.n_in));
        std::printf("%-6s %-16s %3d | %9.1f %8.1f %8.1f | %8.1f | %9.2f %8.1f\n", dtype_name(dt), name, threads,
                    tv * 1e6, static_cast<double>(bytes) / tv * 1e-9, flop1 / tv * 1e-9,
                    static_cast<double>(bytes) / th * 1e-9, tm * 1e3, flop1 * m_prefill / tm * 1e-9);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
