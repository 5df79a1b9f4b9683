// The CPU backend: host memory, a trivially complete stream, the worker pool and the kernel table
// of the instruction set chosen at creation.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <semline/backend.h>
#include <semline/stage.h>

#include "backend/thread_pool.h"
#include "stations/binding.h"
#include "stations/stations.h"
#include "kernels/kernels.h"

namespace semline::stations {
class Kernels;
class SsmKernels;
}

namespace semline::cpu {

// Memory aligned to 64 bytes (a cache line, an AVX-512 register), zero-initialised.
// Large blocks (1 MiB and more, the KV cache pool above all) are anonymous mappings: zero pages
// the kernel commits only when first written, so a pool sized for many sequences costs memory
// only for the tokens actually cached.
class AlignedBlock {
 public:
  AlignedBlock() = default;
  explicit AlignedBlock(size_t bytes);
  AlignedBlock(AlignedBlock&& o) noexcept : p_(o.p_), size_(o.size_), mapped_(o.mapped_) {
    o.p_ = nullptr, o.size_ = 0, o.mapped_ = 0;
  }
  AlignedBlock& operator=(AlignedBlock&& o) noexcept;
  ~AlignedBlock();
  void* data() const { return p_; }
  size_t size() const { return size_; }

 private:
  void release();
  void* p_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // bytes mapped, 0 when from the heap
};

// Scratch memory shared by the stages of one backend. Stages on a backend run one at a time
// (one stream), so each may use the whole area during its forward call; each reserves what it
// needs when it is built, and the area only grows then, never during a step.
class Workspace {
 public:
  void reserve(size_t bytes);
  char* data() const { return static_cast<char*>(block_.data()); }
  size_t size() const { return block_.size(); }

  // Marks the area busy for one forward call; two stages running at once on one backend would
  // overwrite each other's scratch, so the second is refused with an error.
  class Lease {
   public:
    explicit Lease(Workspace& w);
    ~Lease() { w_.busy_.store(false, std::memory_order_release); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    Workspace& w_;
  };

 private:
  AlignedBlock block_;
  std::atomic<bool> busy_{false};
};

class CpuBackend final : public Backend {
 public:
  // threads: worker threads including the caller, 0 for one per hardware thread; prefetch: how
  // decode streams the weights (kernels/kernels.h).
  CpuBackend(int threads, Isa isa, Prefetch prefetch = default_prefetch(), LogFn log = {});
  ~CpuBackend() override;

  BackendInfo info() const override;
  std::unique_ptr<Buffer> alloc(size_t bytes) override;
  Tensor upload_weight(const Tensor& host_view) override;
  Stream& stream() override { return stream_; }
  void copy_to_device(const void* host, const Tensor& dst, size_t bytes, Stream& s) override;
  void copy_to_host(const Tensor& src, void* host, size_t bytes, Stream& s) override;
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override;
  int host_threads() const override { return pool_.size(); }

  const Kernels& kernels() const { return kernels_; }
  ThreadPool& pool() { return pool_; }
  Workspace& workspace() { return workspace_; }
  // What the stations written once call (stations/kernels.h).
  stations::Kernels& station_kernels() { return *station_kernels_; }
  stations::SsmKernels& ssm_kernels() { return *ssm_kernels_; }

 private:
  class CpuStream final : public Stream {
   public:
    void synchronize() override {}
  };

  Kernels kernels_;  // the instruction set's table, with this backend's prefetch
  ThreadPool pool_;
  CpuStream stream_;
  Workspace workspace_;
  std::unique_ptr<stations::Kernels> station_kernels_;
  std::unique_ptr<stations::SsmKernels> ssm_kernels_;
  LogFn log_;
};

// Pieces of one scratch area laid out once, resolved against the workspace at each call.
using ScratchLayout = stations::ScratchPlan;

// The CPU backend behind a stage's context; throws naming the station when it is another one.
inline CpuBackend& cpu_backend_of(const StageContext& ctx) { return stations::backend_as<CpuBackend>(ctx, "cpu"); }

}  // namespace semline::cpu
