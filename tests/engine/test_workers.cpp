// The engine's host workers: every item of every job exactly once, on a named worker, whatever the
// number of threads, items and jobs.
#include <catch2/catch.hpp>

#include <atomic>
#include <vector>

#include "core/engine/workers.h"

using namespace semline;

TEST_CASE("workers run each item of a job once and return when all have run") {
  for (int threads : {1, 2, 4}) {
    Workers w(threads);
    REQUIRE(w.size() == threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      INFO("threads " << threads << ", items " << n);
      std::vector<std::atomic<int>> runs(static_cast<size_t>(n));
      std::atomic<int> bad_worker{0};
      w.run(n, [&](int64_t i, int worker) {
        runs[static_cast<size_t>(i)].fetch_add(1);
        if (worker < 0 || worker >= threads) bad_worker.fetch_add(1);
      });
      for (const auto& r : runs) REQUIRE(r.load() == 1);
      REQUIRE(bad_worker.load() == 0);
    }
  }
}

TEST_CASE("workers keep jobs apart over many short jobs: no item runs in another job") {
  Workers w(3);
  std::vector<int> seen(5);
  for (int job = 0; job < 2000; ++job) {
    // Each job's function knows its own job: a helper that carried an old one into a new job
    // would write a stale number (or run a function gone out of scope, which the sanitizers see).
    w.run(5, [&, job](int64_t i, int) { seen[static_cast<size_t>(i)] = job; });
    for (int v : seen) REQUIRE(v == job);
  }
}
