#include "core/engine/workers.h"

namespace semline {

Workers::Workers(int threads) {
  for (int w = 1; w < threads; ++w) helpers_.emplace_back([this, w] { helper(w); });
}

Workers::~Workers() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : helpers_) t.join();
}

void Workers::take(int worker) {
  for (int64_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < n_;) (*fn_)(i, worker);
}

void Workers::run(int64_t n, const Fn& fn) {
  if (helpers_.empty() || n < 2) {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    fn_ = &fn;
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    busy_ = static_cast<int>(helpers_.size());
    ++job_;
  }
  wake_.notify_all();
  take(0);
  // Every helper checks out of this job before fn goes out of scope: one that woke late finds no
  // item left, but must not carry this fn into the next job.
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return busy_ == 0; });
  fn_ = nullptr;
}

void Workers::helper(int worker) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || job_ != seen; });
      if (stop_) return;
      seen = job_;
    }
    take(worker);
    std::lock_guard lock(mutex_);
    if (--busy_ == 0) idle_.notify_one();
  }
}

}  // namespace semline
