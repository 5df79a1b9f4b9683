// semline SDK — communicators: how the processes ("ranks") of one line move activations (8.0;
// split and recv's patience 9.0).
//
// A line split across ranks (tensor parallelism: [parallel] tensor = N) runs the same stations on
// every rank, each over its shard of the weights, and sums their partial results; pipeline stages
// ([parallel] pipeline = M) pass rows from rank to rank; a grid of both sums within each stage's
// ranks, a communicator split from the whole. The core names no transport: it asks the registry for
// the communicator the config names ([parallel] comm), made by a plugin (comm/mpi: MPI's
// collectives between the processes mpirun started).
//
// Every call blocks until it is complete on this rank and waits at most the communicator's own
// timeout for the other ranks, then throws naming the call and what it waited for: a lost or stuck
// peer stops the line with a message, never a hang. Calls are made from one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "semline/params.h"
#include "semline/stage.h"

namespace semline {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;  // 0 .. size() - 1; rank 0 leads (tokenizer, scheduler, sampling)
  virtual int size() const = 0;
  virtual std::string describe() const = 0;  // e.g. "mpi: rank 1 of 2 on host-a"

  // data[0..count) becomes the element-wise sum of every rank's data, on every rank.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  // recv[r * bytes .. (r + 1) * bytes) becomes rank r's send, on every rank.
  virtual void all_gather(const void* send, size_t bytes, void* recv) = 0;
  // The same on root only; recv is not touched on the other ranks (may be null there).
  virtual void gather(const void* send, size_t bytes, void* recv, int root) = 0;
  // data becomes root's data on every rank. patient: wait without the timeout (a follower waiting
  // for the next step, which comes when the next request does).
  virtual void broadcast(void* data, size_t bytes, int root, bool patient) = 0;
  virtual void send(const void* data, size_t bytes, int to) = 0;
  // patient: as broadcast's (a later stage waiting for the next step).
  virtual void recv(void* data, size_t bytes, int from, bool patient) = 0;
  virtual void barrier() = 0;
  // Every rank calls it at once (a collective): the ranks that pass the same color form a new
  // communicator, ranked by key (ties by their rank here), with this one's timeout. The result
  // lives no longer than this communicator. 9.0.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
  // Stops every rank of the job at once (after an error on this one that the others cannot learn
  // through a collective), after logging why. Does not return.
  [[noreturn]] virtual void abort(std::string_view why) = 0;
};

// A communicator, chosen by name: [parallel] comm = "<name>", its parameters as further keys of
// [parallel].
struct CommEntry {
  std::string name;
  std::string description;  // one line
  std::vector<ParamSpec> params;
  // Reasons it cannot run here (not started by its launcher, say); empty: it can.
  std::function<std::vector<std::string>()> probe;
  std::function<std::unique_ptr<Communicator>(const Params&, const LogFn&)> create;
};

}  // namespace semline
