// semline bench comm: what one all-reduce of a line split across ranks costs on this transport,
// run as `mpirun -np N semline bench comm`. For each size (in floats: a decode step's all-reduce is
// one row of n_embd), the median time of many all-reduces, so the cost model of docs/distributed.md
// can take its latency and bandwidth from the machines it predicts for.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "app.h"

namespace semline::app {

namespace {

struct CommOpts {
  int ranks = 2;
  std::vector<int64_t> sizes = {768, 2048, 4096, 65536, 1048576};
  int iterations = 2000;
  std::string comm = "mpi";
  std::vector<std::string> sets;  // the communicator's parameters, parallel.KEY=VALUE
  std::string output = "md";
};

struct Row {
  int64_t floats;
  double median_us, p10_us, p90_us;
};

void bench_comm(const CommOpts& o) {
  Config c;
  for (const std::string& s : o.sets) apply_override(c, s);
  c.parallel.tensor = o.ranks;
  c.parallel.comm = o.comm;
  const auto plugins = load_plugins({});
  const auto comm = make_communicator(c, plugins->registry);
  std::vector<Row> rows;
  for (int64_t n : o.sizes) {
    std::vector<float> data(static_cast<size_t>(n), 1.0f);
    // Fewer repeats of large messages: the same ~bytes in all.
    const int reps = static_cast<int>(std::clamp<int64_t>(o.iterations * 2048 / std::max<int64_t>(n, 2048), 20, o.iterations));
    std::vector<double> us;
    comm->barrier();
    for (int i = 0; i < reps + reps / 10; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      comm->all_reduce_sum(data.data(), data.size());
      if (i >= reps / 10)  // the first tenth warms up
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    rows.push_back({n, us[us.size() / 2], us[us.size() / 10], us[us.size() * 9 / 10]});
  }
  if (comm->rank() != 0) return;
  if (o.output == "json") {
    nlohmann::json j = nlohmann::json::array();
    for (const Row& r : rows)
      j.push_back({{"ranks", o.ranks}, {"floats", r.floats}, {"bytes", r.floats * 4}, {"median_us", r.median_us},
                   {"p10_us", r.p10_us}, {"p90_us", r.p90_us}});
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("| ranks | floats | bytes | all-reduce median us | p10 us | p90 us | GB/s (bytes / median) |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows)
    std::printf("| %d | %lld | %lld | %.1f | %.1f | %.1f | %.2f |\n", o.ranks, static_cast<long long>(r.floats),
                static_cast<long long>(r.floats * 4), r.median_us, r.p10_us, r.p90_us,
                static_cast<double>(r.floats) * 4 / r.median_us / 1e3);
}

}  // namespace

void add_bench_comm_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("comm", "Time all-reduces between the ranks mpirun starts (mpirun -np N semline bench comm)");
  auto o = std::make_shared<CommOpts>();
  cmd->add_option("--ranks", o->ranks, "Ranks the launcher starts (mpirun -np; default 2)")->check(CLI::Range(2, 4096));
  cmd->add_option("--sizes", o->sizes, "Floats per all-reduce (default 768,2048,4096,65536,1048576)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 28));
  cmd->add_option("--iterations", o->iterations, "All-reduces of the smallest sizes (default 2000)")->check(CLI::Range(20, 10000000));
  cmd->add_option("--comm", o->comm, "The communicator ([parallel] comm; default mpi)");
  cmd->add_option("--set", o->sets, "A communicator parameter, e.g. parallel.timeout_s=10");
  cmd->add_option("-o,--output", o->output, "md | json")->check(CLI::IsMember({"md", "json"}));
  cmd->callback([o] { bench_comm(*o); });
}

}  // namespace semline::app
