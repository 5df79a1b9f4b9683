#include "backend/thread_pool.h"

#include <chrono>

namespace semline::cpu {
namespace {

// The worker index of the thread while it runs a body of some pool, else -1. A run() issued from
// inside a body executes inline on that thread, keeping its index.
thread_local int t_worker = -1;

// How long an idle worker spins before it sleeps: long enough to bridge the serial gaps between
// the kernels of one decode step, short enough not to hold a core between requests.
constexpr auto kSpin = std::chrono::microseconds(200);

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
  if (t_worker >= 0) {
    run_inline(n, grain, body, t_worker);
    return;
  }
  std::lock_guard<std::mutex> lock(submit_);
  if (workers_.empty() || n <= grain) {
    t_worker = 0;
    try {
      run_inline(n, grain, body, 0);
    } catch (...) {
      t_worker = -1;
      throw;
    }
    t_worker = -1;
    return;
  }

  body_ = body;
  n_ = n;
  grain_ = grain;
  next_.store(0, std::memory_order_relaxed);
  failed_.store(false, std::memory_order_relaxed);
  error_ = nullptr;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1);  // publishes the job
  if (sleepers_.load() > 0) generation_.notify_all();

  t_worker = 0;
  work(0);
  t_worker = -1;

  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
    if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > kSpin)
      std::this_thread::yield();
    else
      cpu_relax();
  }
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::work(int index) {
  for (;;) {
    const int64_t b = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (b >= n_ || failed_.load(std::memory_order_relaxed)) return;
    try {
      body_.call(body_.obj, b, b + grain_ < n_ ? b + grain_ : n_, index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
}

void ThreadPool::worker_main(int index) {
  t_worker = index;
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    if (g == seen) {
      const auto start = std::chrono::steady_clock::now();
      for (uint32_t i = 1; (g = generation_.load(std::memory_order_acquire)) == seen; ++i) {
        if ((i & 255) == 0 && std::chrono::steady_clock::now() - start > kSpin) {
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
    work(index);
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace semline::cpu
