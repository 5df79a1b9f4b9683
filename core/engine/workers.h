// Host threads that share a job's items with the caller: the engine's work between steps that
// splits by sequence, such as sampling a batch's rows (one vocabulary-long working set each,
// and a chain that may sort it). The backend's threads compute the steps; these sleep between
// jobs and take the cores while the line waits for the samples.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace semline {

class Workers {
 public:
  // threads >= 1: the caller and threads - 1 helpers.
  explicit Workers(int threads);
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  int size() const { return static_cast<int>(helpers_.size()) + 1; }
  // fn(i, worker) for every i in [0, n), on the caller (worker 0) and the helpers (1..size()-1),
  // each item once; returns when all have run. fn must not throw.
  using Fn = std::function<void(int64_t, int)>;
  void run(int64_t n, const Fn& fn);

 private:
  void helper(int worker);
  void take(int worker);

  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  uint64_t job_ = 0;    // jobs started; a helper joins each once
  int busy_ = 0;        // helpers not yet done with the current job
  bool stop_ = false;
  const Fn* fn_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};  // the next item to take
  std::vector<std::thread> helpers_;
};

}  // namespace semline
