// A persistent pool of worker threads for the CPU kernels.
//
// A decode step of a small model dispatches work some fifty times per token, each a few tens of
// microseconds long, so a dispatch must cost about a microsecond: idle workers spin for a short
// while on a generation counter before they sleep (futex wait), and the caller takes part in
// the work. Work is claimed in chunks from a shared counter, so a core slowed by other processes
// takes fewer chunks instead of delaying the whole step.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace semline::cpu {

class ThreadPool {
 public:
  // body(begin, end, worker): one chunk; worker in [0, size()) names the thread running it
  // (0 is the caller), so a body may index per-thread scratch with it.
  struct Body {
    void* obj;
    void (*call)(void* obj, int64_t begin, int64_t end, int worker);
  };

  explicit ThreadPool(int threads);  // threads >= 1, the caller included
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs body over [0, n) in chunks of `grain` and returns when all are done. The first
  // exception a chunk throws is rethrown here after the others finished (chunks not yet started
  // are skipped). Calls from inside a body run inline on that thread; calls from two outside
  // threads at once take turns.
  void run(int64_t n, int64_t grain, Body body);

  template <class F>
  void run(int64_t n, int64_t grain, F&& f) {
    run(n, grain, Body{&f, [](void* o, int64_t b, int64_t e, int w) { (*static_cast<F*>(o))(b, e, w); }});
  }

 private:
  void worker_main(int index);
  void work(int index);  // claims and runs chunks of the current job

  std::vector<std::thread> workers_;
  std::mutex submit_;  // one job at a time

  // The current job. Written by the submitter before it bumps generation_.
  Body body_{};
  int64_t n_ = 0, grain_ = 0;
  std::atomic<int64_t> next_{0};     // next chunk start
  std::atomic<int> pending_{0};      // workers that have not finished the job
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
  std::mutex error_mutex_;

  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace semline::cpu
