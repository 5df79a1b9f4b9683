// semline SDK — backends: memory, streams, host<->device copies.
//
// A backend owns the memory its stages read and write and the queues ("streams") their work runs
// on. Stage calls enqueue work on a stream and may return before it has run (GPU backends); the
// host synchronises a stream before it reads results back. The CPU backend runs work at once and
// its streams are trivially complete, but the line never relies on that: every read of device
// memory by the host goes through copy_to_host + synchronize, so a device backend drops in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "semline/tensor.h"

namespace semline {

class Backend;

// A block of backend memory. host() is non-null only when the host may read and write it directly
// (CPU memory, mapped files); device-local memory has no host address.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual Backend& backend() = 0;
  virtual size_t size() const = 0;
  virtual void* host() = 0;
};

// An ordered queue of work on one backend.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual void synchronize() = 0;  // returns when all work enqueued so far has completed
};

// What a backend tells about itself (printed by `semline plugins`).
struct BackendInfo {
  std::string name;         // "cpu", "vulkan", ...
  std::string device;       // human-readable device, e.g. "Intel Xeon (avx512)"
  size_t memory_bytes = 0;  // device memory, 0 when unknown
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendInfo info() const = 0;

  // Device memory of the given size; zero-initialised.
  virtual std::unique_ptr<Buffer> alloc(size_t bytes) = 0;

  // Makes a model weight (a host view, usually into the mapped file) usable by this backend's
  // stages. A CPU backend returns the view itself (zero copy); a device backend copies it into
  // device memory it keeps for the life of the backend.
  virtual Tensor upload_weight(const Tensor& host_view) = 0;

  virtual Stream& stream() = 0;  // the backend's default stream

  // Asynchronous copies on a stream; `host` must stay valid until the stream is synchronised.
  virtual void copy_to_device(const void* host, const Tensor& dst, size_t bytes, Stream& s) = 0;
  virtual void copy_to_host(const Tensor& src, void* host, size_t bytes, Stream& s) = 0;

  // Runs fn(begin, end) over [0, n) split across the backend's host worker threads and returns
  // when all parts are done. For host-side work of any stage (CPU kernels, tokenizers); the number
  // of parts is at most host_threads().
  virtual void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) = 0;
  virtual int host_threads() const = 0;
};

}  // namespace semline
