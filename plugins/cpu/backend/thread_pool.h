// A persistent pool of worker threads for the CPU kernels.
//
// A decode step of a small model dispatches work some fifty times per token, each a few tens of
// microseconds long, so a dispatch must cost about a microsecond: idle workers spin for a short
// while on a generation counter before they sleep (futex wait), and the caller takes part in
// the work. Work is claimed in chunks from a shared counter and a job ends when all its chunks
// are done, not when every worker has checked in: a worker descheduled by other processes simply
// takes no chunks, and the others (the caller at least) do its share.
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
  // Claims and runs chunks of job `gen` until none is left or a newer job replaced it.
  void work(uint32_t gen, int index);

  std::vector<std::thread> workers_;
  std::mutex submit_;  // one job at a time
  uint32_t last_gen_ = 0;

  // The current job. A worker that wakes late may read the fields of a newer job; its claim then
  // fails (the claim word carries the generation), so it never runs a chunk with them.
  std::atomic<void*> obj_{nullptr};
  std::atomic<void (*)(void*, int64_t, int64_t, int)> call_{nullptr};
  std::atomic<int64_t> n_{0}, grain_{0};
  std::atomic<uint32_t> chunks_{0};
  std::atomic<uint64_t> claim_{0};   // generation << 32 | next chunk
  std::atomic<uint32_t> done_{0};    // chunks of the current job finished (run or skipped)
  std::atomic<bool> failed_{false};  // a chunk threw: the rest are skipped
  std::exception_ptr error_;
  std::mutex error_mutex_;

  std::atomic<uint32_t> generation_{0};  // what idle workers watch
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace semline::cpu
