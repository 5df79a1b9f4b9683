#include "backend/thread_pool.h"

#include <chrono>
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace semline::cpu {
namespace {

// The pool whose body this thread is running and its worker index there (null, -1 outside).
// A run() issued from inside a body of the same pool executes inline on that thread, keeping
// its index; a run() on another pool is submitted to that pool like any outside call.
thread_local const ThreadPool* t_pool = nullptr;
thread_local int t_worker = -1;

// Marks the calling thread as worker `index` of `pool` for a scope.
class AsWorker {
 public:
  AsWorker(const ThreadPool* pool, int index) : pool_(t_pool), worker_(t_worker) {
    t_pool = pool;
    t_worker = index;
  }
  ~AsWorker() {
    t_pool = pool_;
    t_worker = worker_;
  }
  AsWorker(const AsWorker&) = delete;
  AsWorker& operator=(const AsWorker&) = delete;

 private:
  const ThreadPool* pool_;
  int worker_;
};

// The kernels run with denormal floats flushed to zero (x86's FTZ and DAZ), for the scope of a
// job on the caller and for a worker's life. Attention at depth weighs most keys by a probability
// near exp(-87); times a Q8_0 block's scale or a value that is a denormal, and every operation on
// a denormal costs the core a microcode assist of a hundred cycles or more — at a 4k context that
// made a q8_0 cache's decode 2.3x slower. What is flushed is below 1.2e-38 of the output.
class FlushDenormals {
 public:
#if defined(__x86_64__) || defined(__i386__)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtz | kDaz); }
  ~FlushDenormals() { _mm_setcsr(saved_); }
#else
  FlushDenormals() = default;  // elsewhere the defaults stand
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

#if defined(__x86_64__) || defined(__i386__)
 private:
  static constexpr unsigned kFtz = 0x8000, kDaz = 0x0040;
  unsigned saved_;
#endif
};

// How long an idle worker spins before it sleeps: long enough to bridge the serial gaps between
// the kernels of one decode step, short enough not to hold a core between requests.
constexpr auto kIdleSpin = std::chrono::microseconds(200);
// How long the caller spins for the last chunks of others before it yields its core, which may
// be the one the thread finishing them needs.
constexpr auto kWaitSpin = std::chrono::microseconds(30);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

void run_inline(int64_t n, int64_t grain, ThreadPool::Body body, int worker) {
  for (int64_t b = 0; b < n; b += grain) body.call(body.obj, b, b + grain < n ? b + grain : n, worker);
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  workers_.reserve(threads > 1 ? threads - 1 : 0);
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run(int64_t n, int64_t grain, Body body) {
  if (n <= 0) return;
  if (grain <= 0) grain = 1;
  if (t_pool == this) {
    run_inline(n, grain, body, t_worker);
    return;
  }
  std::lock_guard<std::mutex> lock(submit_);
  AsWorker caller(this, 0);
  FlushDenormals flush;
  if (workers_.empty() || n <= grain) {
    run_inline(n, grain, body, 0);
    return;
  }

  const uint32_t gen = ++last_gen_;
  const auto chunks = static_cast<uint32_t>((n + grain - 1) / grain);
  // Retire the last job's claim word before its fields change. A worker late on that job may
  // hold the exhausted word (gen', its chunk count) and, reading this job's larger chunk count,
  // go on to claim; its compare-exchange must then fail, or it would run a chunk of this job
  // with torn fields and count it done before it is. The release store of chunks_ below (read
  // with acquire in work()) orders this store before any use of the new count.
  claim_.store(uint64_t{gen} << 32 | UINT32_MAX, std::memory_order_relaxed);
  obj_.store(body.obj, std::memory_order_relaxed);
  call_.store(body.call, std::memory_order_relaxed);
  n_.store(n, std::memory_order_relaxed);
  grain_.store(grain, std::memory_order_relaxed);
  chunks_.store(chunks, std::memory_order_release);
  done_.store(0, std::memory_order_relaxed);
  failed_.store(false, std::memory_order_relaxed);
  error_ = nullptr;
  claim_.store(uint64_t{gen} << 32, std::memory_order_release);  // publishes the job
  generation_.store(gen);
  if (sleepers_.load() > 0) generation_.notify_all();

  work(gen, 0);

  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; done_.load(std::memory_order_acquire) < chunks; ++i) {
    if ((i & 63) == 63 && std::chrono::steady_clock::now() - start > kWaitSpin)
      std::this_thread::yield();
    else
      cpu_relax();
  }
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::work(uint32_t gen, int index) {
  for (;;) {
    uint64_t v = claim_.load(std::memory_order_acquire);
    if (static_cast<uint32_t>(v >> 32) != gen) return;
    const uint32_t c = static_cast<uint32_t>(v);
    if (c >= chunks_.load(std::memory_order_acquire)) return;
    Body body{obj_.load(std::memory_order_relaxed), call_.load(std::memory_order_relaxed)};
    const int64_t n = n_.load(std::memory_order_relaxed), grain = grain_.load(std::memory_order_relaxed);
    // Succeeds only while the word still names this job, so the fields read above are its own.
    if (!claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) continue;
    if (!failed_.load(std::memory_order_relaxed)) {
      const int64_t b = c * grain;
      try {
        body.call(body.obj, b, b + grain < n ? b + grain : n, index);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
    }
    done_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::worker_main(int index) {
  AsWorker self(this, index);
  FlushDenormals flush;
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = generation_.load(std::memory_order_acquire);
    if (g == seen) {
      const auto start = std::chrono::steady_clock::now();
      for (uint32_t i = 1; (g = generation_.load(std::memory_order_acquire)) == seen; ++i) {
        if ((i & 255) == 0 && std::chrono::steady_clock::now() - start > kIdleSpin) {
          sleepers_.fetch_add(1);
          generation_.wait(seen);
          sleepers_.fetch_sub(1);
        } else {
          cpu_relax();
        }
      }
    }
    seen = g;
    if (stop_.load()) return;
    work(g, index);
  }
}

}  // namespace semline::cpu
