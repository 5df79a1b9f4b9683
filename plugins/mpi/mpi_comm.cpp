// The MPI communicator: the ranks are the processes mpirun started (MPI_COMM_WORLD), on one host
// or many, or some of them (split: MPI_Comm_split). Each call starts MPI's non-blocking operation
// and tests it until it completes or the timeout passes, so a lost or stuck peer ends in an error
// naming the call, never a hang.
#include "mpi_comm.h"

#include <dlfcn.h>
#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <string>
#include <thread>

#include <semline/error.h>

namespace semline::mpi {
namespace {

using Clock = std::chrono::steady_clock;

// Whether a launcher (mpirun's, or a PMI/PMIx process manager) started this process.
bool launched() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

std::string mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return std::string(text, static_cast<size_t>(len));
}

void check(int code, const std::string& what) {
  if (code != MPI_SUCCESS) throw Error("mpi: " + what + ": " + mpi_error(code));
}

int count_of(size_t n, const char* what) {
  if (n > static_cast<size_t>(INT_MAX))
    throw Error(std::string("mpi: ") + what + " of " + std::to_string(n) + " elements is above MPI's count limit");
  return static_cast<int>(n);
}

// OpenMPI opens its own components with dlopen and expects libmpi's symbols to be global; the host
// loads this plugin (and so libmpi) with RTLD_LOCAL. Reopening the library that holds MPI_Init with
// RTLD_GLOBAL (RTLD_NOLOAD: the one already loaded) makes its symbols visible to them.
void make_mpi_symbols_global() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

class MpiComm final : public Communicator {
 public:
  // MPI_COMM_WORLD, initialising MPI unless the process did.
  MpiComm(double timeout_s, LogFn log) : timeout_(timeout_s), log_(std::move(log)) {
    make_mpi_symbols_global();
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
      owns_mpi_ = true;
      // The engine calls from one thread at a time, not always the one that initialised MPI.
      if (provided < MPI_THREAD_SERIALIZED)
        throw Error("mpi: the MPI library gives thread level " + std::to_string(provided) +
                    ", below MPI_THREAD_SERIALIZED, which the engine's step thread needs");
    }
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    host_ = host;
    join(MPI_COMM_WORLD);
  }

  // Some of the ranks: `part`, which this communicator frees.
  MpiComm(const MpiComm& whole, MPI_Comm part, int color)
      : timeout_(whole.timeout_), log_(whole.log_), host_(whole.host_), owns_comm_(true) {
    join(part);
    world_rank_ = whole.world_rank_;
    what_ = " (group " + std::to_string(color) + ", world rank " + std::to_string(world_rank_) + ")";
  }

  ~MpiComm() override {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (finalised) return;
    if (owns_comm_) MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override {
    return "mpi: rank " + std::to_string(rank_) + " of " + std::to_string(size_) + what_ + " on " + host_;
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    if (color < 0) throw Error("mpi: split: color " + std::to_string(color) + " is negative; colors are 0 or more");
    // MPI_Comm_split blocks without a timeout: a barrier first, which has one, finds a rank that
    // never comes.
    barrier();
    MPI_Comm part = MPI_COMM_NULL;
    check(MPI_Comm_split(comm_, color, key, &part), "split");
    return std::make_unique<MpiComm>(*this, part, color);
  }

  void all_reduce_sum(float* data, size_t count) override {
    MPI_Request r;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, count_of(count, "all_reduce"), MPI_FLOAT, MPI_SUM, comm_, &r),
          "all_reduce");
    wait(r, "all_reduce of " + std::to_string(count) + " floats", false);
  }

  void all_gather(const void* send, size_t bytes, void* recv) override {
    MPI_Request r;
    const int n = count_of(bytes, "all_gather");
    check(MPI_Iallgather(send, n, MPI_BYTE, recv, n, MPI_BYTE, comm_, &r), "all_gather");
    wait(r, "all_gather of " + std::to_string(bytes) + " bytes", false);
  }

  void gather(const void* send, size_t bytes, void* recv, int root) override {
    MPI_Request r;
    const int n = count_of(bytes, "gather");
    check(MPI_Igather(send, n, MPI_BYTE, recv, n, MPI_BYTE, root, comm_, &r), "gather");
    wait(r, "gather of " + std::to_string(bytes) + " bytes to rank " + std::to_string(root), false);
  }

  void broadcast(void* data, size_t bytes, int root, bool patient) override {
    MPI_Request r;
    check(MPI_Ibcast(data, count_of(bytes, "broadcast"), MPI_BYTE, root, comm_, &r), "broadcast");
    wait(r, "broadcast of " + std::to_string(bytes) + " bytes from rank " + std::to_string(root), patient);
  }

  void send(const void* data, size_t bytes, int to) override {
    MPI_Request r;
    check(MPI_Isend(data, count_of(bytes, "send"), MPI_BYTE, to, kTag, comm_, &r), "send");
    wait(r, "send of " + std::to_string(bytes) + " bytes to rank " + std::to_string(to), false);
  }

  void recv(void* data, size_t bytes, int from, bool patient) override {
    MPI_Request r;
    check(MPI_Irecv(data, count_of(bytes, "recv"), MPI_BYTE, from, kTag, comm_, &r), "recv");
    wait(r, "receive of " + std::to_string(bytes) + " bytes from rank " + std::to_string(from), patient);
  }

  void barrier() override {
    MPI_Request r;
    check(MPI_Ibarrier(comm_, &r), "barrier");
    wait(r, "barrier", false);
  }

  [[noreturn]] void abort(std::string_view why) override {
    log_(LogLevel::Error, "rank " + std::to_string(world_rank_) + " stops every rank: " + std::string(why));
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);  // MPI_Abort does not return; should it, the process still ends
  }

 private:
  static constexpr int kTag = 7;

  // Tests until done. A step's collectives complete within milliseconds, so the first 20 ms spin
  // (a yield between tests); a patient wait then sleeps 200 us between tests, since a follower may
  // wait for the next request as long as the server runs.
  void wait(MPI_Request& r, const std::string& what, bool patient) {
    const auto start = Clock::now();
    const auto spin = std::chrono::milliseconds(20);
    const auto limit = std::chrono::duration<double>(timeout_);
    for (;;) {
      int done = 0;
      check(MPI_Test(&r, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      const auto waited = Clock::now() - start;
      if (!patient && waited > limit)
        throw Error("mpi: rank " + std::to_string(world_rank_) + " waited " + std::to_string(static_cast<int>(timeout_)) +
                    " s for the " + what + " (timeout_s): a rank is lost or stuck");
      if (waited < spin)
        sched_yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(patient ? 200 : 20));
    }
  }

  void join(MPI_Comm comm) {
    comm_ = comm;
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    world_rank_ = rank_;
  }

  double timeout_;
  LogFn log_;
  std::string host_;
  bool owns_mpi_ = false, owns_comm_ = false;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, world_rank_ = 0;  // world_rank_: in MPI_COMM_WORLD, for messages
  std::string what_;                          // describe()'s note on a split communicator
};

}  // namespace

CommEntry comm_entry() {
  return CommEntry{
      .name = "mpi",
      .description = "MPI between the processes mpirun started (OpenMPI: shared memory on one host, TCP or "
                     "InfiniBand between hosts)",
      .params = {ParamSpec{.name = "timeout_s",
                           .type = ParamType::Float,
                           .default_value = 120.0,
                           .doc = "the longest a collective waits for the other ranks before the line stops",
                           .min = 0.001,
                           .max = 86400.0}},
      .probe =
          [] {
            std::vector<std::string> reasons;
            if (!launched())
              reasons.push_back("this process was not started by mpirun (no OMPI_COMM_WORLD_SIZE, PMI_SIZE or "
                                "PMIX_RANK in its environment); run mpirun -np N semline ...");
            return reasons;
          },
      .create = [](const Params& p, const LogFn& log) -> std::unique_ptr<Communicator> {
        return std::make_unique<MpiComm>(p.get_float("timeout_s"), log);
      },
  };
}

}  // namespace semline::mpi
