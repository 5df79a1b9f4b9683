#include "backend/cpu_backend.h"

#include <sys/mman.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <thread>

#include <semline/error.h>

#include "ops/ssm.h"
#include "ops/station_kernels.h"

namespace semline::cpu {
namespace {

class CpuBuffer final : public Buffer {
 public:
  CpuBuffer(Backend& b, size_t bytes) : backend_(b), block_(bytes) {}
  Backend& backend() override { return backend_; }
  size_t size() const override { return block_.size(); }
  void* host() override { return block_.data(); }

 private:
  Backend& backend_;
  AlignedBlock block_;
};

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "CPU";
}

// Bytes from element 0 to the end of the last element of a view.
size_t tensor_extent(const Tensor& t) {
  int64_t bytes = t.row_bytes();
  for (int d = 1; d < kMaxDims; ++d)
    if (t.ne[d] > 1) bytes += (t.ne[d] - 1) * t.nb[d];
  return static_cast<size_t>(bytes);
}

void check_copy(const Tensor& t, size_t bytes, const char* what) {
  if (!t.host)
    throw Error(std::string("cpu backend: ") + what + " a tensor without a host address (" +
                tensor_shape_string(t) + ")");
  if (bytes > tensor_extent(t))
    throw Error(std::string("cpu backend: ") + what + " " + std::to_string(bytes) +
                " bytes, but the tensor " + tensor_shape_string(t) + " spans only " +
                std::to_string(tensor_extent(t)));
}

}  // namespace

AlignedBlock::AlignedBlock(size_t bytes) : size_(bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded >= (size_t{1} << 20)) {
    // Huge pages where the kernel grants them (transparent_hugepage = madvise): the KV cache is
    // read in short runs all over its blocks each step, and with 4 KiB pages most runs start on a
    // page the TLB does not hold. The mapping starts on a 2 MiB boundary, which a huge page needs;
    // the advice is only a hint: without it the pages are small.
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t span = (rounded + kHuge - 1) / kHuge * kHuge;
    void* p = mmap(nullptr, span + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw Error("cpu backend: cannot map " + std::to_string(bytes) + " bytes");
    char* base = static_cast<char*>(p);
    char* start = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + kHuge - 1) / kHuge * kHuge);
    if (start > base) munmap(base, static_cast<size_t>(start - base));
    if (start + span < base + span + kHuge) munmap(start + span, static_cast<size_t>(base + span + kHuge - (start + span)));
    madvise(start, span, MADV_HUGEPAGE);
    p_ = start;
    mapped_ = span;
    return;
  }
  p_ = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p_) throw Error("cpu backend: cannot allocate " + std::to_string(bytes) + " bytes");
  std::memset(p_, 0, rounded);
}

void AlignedBlock::release() {
  if (mapped_) munmap(p_, mapped_);
  else std::free(p_);
  p_ = nullptr;
  size_ = mapped_ = 0;
}

AlignedBlock& AlignedBlock::operator=(AlignedBlock&& o) noexcept {
  if (this != &o) {
    release();
    p_ = o.p_;
    size_ = o.size_;
    mapped_ = o.mapped_;
    o.p_ = nullptr;
    o.size_ = o.mapped_ = 0;
  }
  return *this;
}

AlignedBlock::~AlignedBlock() { release(); }

void Workspace::reserve(size_t bytes) {
  if (busy_.load()) throw Error("cpu backend: scratch area resized while a stage is running");
  if (bytes > block_.size()) block_ = AlignedBlock(bytes);
}

Workspace::Lease::Lease(Workspace& w) : w_(w) {
  if (w.busy_.exchange(true, std::memory_order_acquire))
    throw Error("cpu backend: two stages ran at once on one backend; cpu stages share one "
                "scratch area and must run one at a time (use one backend per thread)");
}

CpuBackend::CpuBackend(int threads, Isa isa, Prefetch prefetch, LogFn log)
    : kernels_(kernels_for(isa)),
      pool_(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
      station_kernels_(make_station_kernels(*this)),
      ssm_kernels_(make_ssm_kernels(*this)),
      log_(std::move(log)) {
  kernels_.prefetch = prefetch;
  if (log_)
    log_(LogLevel::Debug, "cpu backend: " + std::to_string(pool_.size()) + " threads, " +
                              isa_name(isa) + " kernels, " + prefetch_name(prefetch) + " prefetch");
}

CpuBackend::~CpuBackend() = default;

BackendInfo CpuBackend::info() const {
  BackendInfo i;
  i.name = "cpu";
  i.device = cpu_model_name() + " (" + isa_name(kernels_.isa) + " kernels, " + prefetch_name(kernels_.prefetch) +
             " prefetch, " +
             std::to_string(pool_.size()) + " threads)";
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  i.memory_bytes = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
  return i;
}

std::unique_ptr<Buffer> CpuBackend::alloc(size_t bytes) { return std::make_unique<CpuBuffer>(*this, bytes); }

Tensor CpuBackend::upload_weight(const Tensor& host_view) {
  if (!host_view.host)
    throw Error("cpu backend: weight " + tensor_shape_string(host_view) + " has no host address");
  return host_view;
}

void CpuBackend::copy_to_device(const void* host, const Tensor& dst, size_t bytes, Stream&) {
  check_copy(dst, bytes, "copy of");
  std::memcpy(dst.host, host, bytes);
}

void CpuBackend::copy_to_host(const Tensor& src, void* host, size_t bytes, Stream&) {
  check_copy(src, bytes, "copy of");
  std::memcpy(host, src.host, bytes);
}

void CpuBackend::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t parts = std::min<int64_t>(n, pool_.size());
  pool_.run(n, (n + parts - 1) / parts, [&fn](int64_t b, int64_t e, int) { fn(b, e); });
}

}  // namespace semline::cpu
