// The cpu backend: memory, copies, and the worker pool's dispatch.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <stdexcept>
#include <thread>
#include <vector>

#include "backend/cpu_backend.h"
#include "cpu/cpu_test_util.h"

using namespace semline;
using namespace semline::cpu;

TEST_CASE("buffers are 64-byte aligned, zeroed and host-visible", "[backend]") {
  CpuBackend be(2, best_isa());
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{100}, size_t{1} << 20}) {
    auto buf = be.alloc(bytes);
    REQUIRE(buf->size() == bytes);
    REQUIRE(&buf->backend() == &be);
    REQUIRE(buf->host() != nullptr);
    REQUIRE(reinterpret_cast<uintptr_t>(buf->host()) % 64 == 0);
    const auto* p = static_cast<const unsigned char*>(buf->host());
    for (size_t i = 0; i < bytes; ++i) REQUIRE(p[i] == 0);
  }
}

TEST_CASE("prefetch names round-trip, AMD CPUs default to the hardware prefetcher", "[backend]") {
  for (Prefetch p : {Prefetch::Software, Prefetch::Hardware}) REQUIRE(prefetch_from_name(prefetch_name(p)) == p);
  REQUIRE_FALSE(prefetch_from_name("auto"));  // the registry's word for default_prefetch()
  // The vendor as Linux reports it, read independently of the backend's CPUID check.
  std::ifstream info("/proc/cpuinfo");
  std::string line, vendor;
  while (vendor.empty() && std::getline(info, line))
    if (line.rfind("vendor_id", 0) == 0) vendor = line.substr(line.find(':') + 1);
  INFO("vendor_id:" << vendor);
  if (vendor.find("AuthenticAMD") != std::string::npos) REQUIRE(default_prefetch() == Prefetch::Hardware);
  if (vendor.find("GenuineIntel") != std::string::npos) REQUIRE(default_prefetch() == Prefetch::Software);
  CpuBackend be(1, best_isa(), Prefetch::Hardware);
  REQUIRE(be.kernels().prefetch == Prefetch::Hardware);
  REQUIRE(be.info().device.find("hardware prefetch") != std::string::npos);
}

TEST_CASE("copies move bytes and refuse to overrun the tensor", "[backend]") {
  CpuBackend be(1, best_isa());
  auto buf = be.alloc(64);
  const Tensor t = make_tensor(DType::F32, {4, 4}, buf->host(), buf.get());
  float src[16], dst[16] = {};
  for (int i = 0; i < 16; ++i) src[i] = static_cast<float>(i) * 0.5f;
  be.copy_to_device(src, t, sizeof src, be.stream());
  be.stream().synchronize();
  be.copy_to_host(t, dst, sizeof dst, be.stream());
  be.stream().synchronize();
  REQUIRE(std::memcmp(src, dst, sizeof src) == 0);
  REQUIRE_THROWS_WITH(be.copy_to_device(src, t, 68, be.stream()), Catch::Contains("spans only 64"));
  Tensor bare = make_tensor(DType::F32, {4});
  REQUIRE_THROWS_WITH(be.copy_to_host(bare, dst, 4, be.stream()), Catch::Contains("without a host address"));
}

TEST_CASE("weights are used in place", "[backend]") {
  CpuBackend be(1, best_isa());
  float w[8] = {};
  const Tensor view = make_tensor(DType::F32, {8}, w);
  REQUIRE(be.upload_weight(view).host == w);
  REQUIRE_THROWS_WITH(be.upload_weight(make_tensor(DType::F32, {8})),
                      Catch::Contains("cpu backend: weight F32 [8] has no host address"));
  REQUIRE(be.info().name == "cpu");
  REQUIRE(be.info().device.find(isa_name(best_isa())) != std::string::npos);
}

TEST_CASE("parallel_for covers every index once in at most host_threads parts", "[backend]") {
  for (int threads : {1, 2, 3}) {
    CpuBackend be(threads, best_isa());
    REQUIRE(be.host_threads() == threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      INFO("threads " << threads << ", n " << n);
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> parts{0};
      be.parallel_for(n, [&](int64_t b, int64_t e) {
        REQUIRE(b < e);
        ++parts;
        for (int64_t i = b; i < e; ++i) ++hits[i];
      });
      for (auto& h : hits) REQUIRE(h.load() == 1);
      REQUIRE(parts.load() <= threads);
    }
  }
  CpuBackend all(0, best_isa());
  REQUIRE(all.host_threads() == static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

TEST_CASE("the pool survives many quick dispatches, idle gaps, nesting and errors", "[backend]") {
  CpuBackend be(3, best_isa());
  std::atomic<int64_t> total{0};
  for (int round = 0; round < 2000; ++round) {
    be.parallel_for(64, [&](int64_t b, int64_t e) { total += e - b; });
    // Some gaps longer than the workers' spin, so they sleep and must be woken.
    if (round % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(total.load() == 2000 * 64);

  std::atomic<int64_t> inner{0};
  be.parallel_for(4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) be.parallel_for(10, [&](int64_t x, int64_t y) { inner += y - x; });
  });
  REQUIRE(inner.load() == 40);

  REQUIRE_THROWS_WITH(be.parallel_for(100,
                                      [&](int64_t b, int64_t) {
                                        if (b == 0) throw std::runtime_error("chunk failed");
                                      }),
                      "chunk failed");
  std::atomic<int64_t> after{0};
  be.parallel_for(100, [&](int64_t b, int64_t e) { after += e - b; });
  REQUIRE(after.load() == 100);
}

TEST_CASE("a body of one pool may dispatch on another, worker indices stay in range", "[backend]") {
  CpuBackend a(3, best_isa()), b(2, best_isa());
  std::atomic<int64_t> total{0};
  std::atomic<bool> bad{false};
  a.pool().run(6, 1, [&](int64_t, int64_t, int) {
    b.pool().run(20, 3, [&](int64_t x, int64_t y, int w) {
      if (w < 0 || w >= b.host_threads()) bad = true;
      total += y - x;
    });
  });
  REQUIRE_FALSE(bad.load());
  REQUIRE(total.load() == 6 * 20);
}

TEST_CASE("dispatches from two outside threads take turns", "[backend]") {
  CpuBackend be(2, best_isa());
  std::atomic<int64_t> a{0}, b{0};
  std::thread other([&] {
    for (int i = 0; i < 300; ++i) be.parallel_for(50, [&](int64_t x, int64_t y) { a += y - x; });
  });
  for (int i = 0; i < 300; ++i) be.parallel_for(50, [&](int64_t x, int64_t y) { b += y - x; });
  other.join();
  REQUIRE(a.load() == 300 * 50);
  REQUIRE(b.load() == 300 * 50);
}

TEST_CASE("back-to-back jobs of different sizes: every chunk runs once, and all before run() returns", "[backend]") {
  // A worker still on one job when the next is set up must not claim a chunk of it: that chunk
  // would run twice, or the job would count it done before it ran. Alternating chunk counts (2,
  // then 9) give a worker holding the last job's exhausted claim a chunk index the next job has.
  CpuBackend be(3, best_isa());
  std::atomic<int> hits[9];
  int wrong = 0;
  for (int job = 0; job < 20000; ++job) {
    const int64_t n = job % 2 ? 9 : 2;
    for (int64_t i = 0; i < n; ++i) hits[i].store(0);
    be.pool().run(n, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
    });
    for (int64_t i = 0; i < n; ++i) wrong += hits[i].load() != 1;
  }
  REQUIRE(wrong == 0);
}

TEST_CASE("chunked runs give each worker index to one thread at a time", "[backend]") {
  CpuBackend be(2, best_isa());
  std::atomic<int> busy[2] = {0, 0};
  std::atomic<bool> clash{false};
  be.pool().run(400, 1, [&](int64_t, int64_t, int w) {
    if (busy[w].fetch_add(1) != 0) clash = true;
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    busy[w].fetch_sub(1);
  });
  REQUIRE_FALSE(clash.load());
}

#if defined(__x86_64__) || defined(__i386__)
TEST_CASE("pool jobs flush denormals to zero on every thread, and the caller's mode comes back", "[backend]") {
  // A probability near exp(-87) times a small scale: a denormal unless flushed (thread_pool.cpp).
  volatile float p = 1.6e-38f, scale = 1e-3f;
  REQUIRE(p * scale != 0.0f);  // the caller's default: gradual underflow
  for (int threads : {1, 2}) {
    INFO(threads << " thread(s)");
    CpuBackend be(threads, best_isa());
    std::atomic<int> kept{0};
    be.pool().run(64, 1, [&](int64_t, int64_t, int) {
      if (p * scale != 0.0f) ++kept;
    });
    CHECK(kept.load() == 0);
    CHECK(p * scale != 0.0f);
  }
}
#endif

TEST_CASE("the shared scratch area refuses a second user while leased", "[backend]") {
  CpuBackend be(1, best_isa());
  be.workspace().reserve(1024);
  REQUIRE(be.workspace().size() >= 1024);
  {
    Workspace::Lease lease(be.workspace());
    REQUIRE_THROWS_WITH(Workspace::Lease(be.workspace()), Catch::Contains("one at a time"));
    REQUIRE_THROWS_WITH(be.workspace().reserve(4096), "cpu backend: scratch area resized while a stage is running");
  }
  Workspace::Lease again(be.workspace());
}
