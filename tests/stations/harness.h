// The station parity harness: every station, variant and weight dtype of every backend against
// the float64 references of tests/common/reference_stages.h. What a test needs of a backend goes
// through the SDK (Backend::alloc, copies, the registry entries), so one test serves them all.
//
// Tolerances (largest error over the largest reference value):
// - 1e-5 where the backend computes in float from the weights as stored (every dtype on vulkan,
//   F32 / F16 / BF16 on the cpu): only float arithmetic differs from the reference;
// - 1e-2 where the backend rounds a product's input to 8 bits (Q8_0 / Q4_0 on the cpu): the
//   reference rounds the same input, but a value the backend's float arithmetic puts across a
//   rounding step moves an output by ~2e-3;
// - 2e-3 with an F16 KV cache: keys and values are rounded to half precision from float in the
//   backend and from double in the reference, and a value at a rounding boundary lands one
//   half-ulp apart.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "common/compare.h"
#include "common/reference_stages.h"
#include "common/station_fixtures.h"
#include "stations/targets.h"

namespace semline::stationtest {

using testing::Cache;
using testing::FakeModel;
using testing::Heads;
using testing::kAllWeights;
using testing::kAttnTensors;
using testing::random_floats;
using testing::rel_err;
using testing::StepData;
using testing::Vec;
using testing::Weight;

// A small llama layer (n_embd 64, n_ff 96, 67 tokens; by default 8 query heads over 2 kv heads
// of 8 dims) on a setup's backend. n_ctx_train 8 is shorter than the tests' contexts: dense
// attention must grow its score rows.
struct Layer {
  const Setup& setup;
  HParams hp;
  FakeModel model;
  Backend& be;

  explicit Layer(const Setup& s, RopeType rope_type = RopeType::Normal, Heads h = {});
  StageContext context(std::string station, std::vector<std::pair<std::string, std::string>> tensors,
                       int32_t max_tokens = 16) const {
    return testing::layer_context(be, model, hp, std::move(station), std::move(tensors), max_tokens);
  }
  // The setup's entry for `kind`/`variant` built for a context (testing::build_stage).
  std::unique_ptr<Stage> build(StageKind kind, const std::string& variant, StageContext ctx,
                               std::map<std::string, ParamValue> params = {}) const {
    return testing::build_stage(*setup.entries, kind, variant, std::move(ctx), std::move(params));
  }
  const StageEntry& entry(StageKind kind, const std::string& variant) const { return setup.entries->stage(kind, variant); }
  // Whether this backend registers the variant.
  bool has(StageKind kind, const std::string& variant) const;
  void add_attention_weights(DType dt) { testing::add_attention_weights(model, hp, dt); }
  // The tolerance for products over weights of dtype dt (see the header).
  double weight_tol(DType dt) const { return setup.quantized_input(dt) ? 1e-2 : 1e-5; }
  // The backend's name, as its errors say it ("cpu", "vulkan").
  const std::string& backend_name() const { return setup.entries->backends.at(0).name; }
};

// Rows of activations on a backend, with their host copy (what the rows started from).
struct Rows {
  Backend* be;
  std::vector<float> host;
  int64_t width;
  std::unique_ptr<Buffer> buf;
  Tensor t;

  Rows(Backend& backend, std::vector<float> values, int64_t w);
  Rows(Backend& backend, int64_t rows, int64_t w, float scale = 1.0f)
      : Rows(backend, random_floats(rows * w, scale), w) {}
  int64_t rows() const { return static_cast<int64_t>(host.size()) / width; }
  Vec row(int64_t r) const { return Vec(host.begin() + r * width, host.begin() + (r + 1) * width); }
  std::vector<Vec> all_rows() const;
  // The values now on the backend.
  std::vector<float> read() const;
  // What a stage added: the values now minus the values the rows started from.
  Vec added() const;
};

// One step of one sequence at positions 0..m-1 with the given tokens (zeros where none are given;
// the stations that work row by row read only the count), and no block tables.
StepData rows_step(int64_t m, std::vector<int32_t> tokens = {});

// out += stage(x) (or out = stage(x)) as one step of x.rows() tokens of one sequence (rows_step),
// the stage's result meeting out as `mode` says.
void forward_rows(Stage& stage, Backend& be, const Rows& x, const Rows& out, OutMode mode = OutMode::Natural);

// The embedding station over the layer's "token_embd" table, checked to write each of `tokens`'
// rows exactly (every weight dtype widens to float without rounding). Returns the station.
std::unique_ptr<Stage> check_lookup(Layer& l, const Weight& table, const std::vector<int32_t>& tokens);

// Every value of an F32 or F16 tensor on a backend, as floats (copy_to_host + synchronize).
std::vector<float> read_back(Backend& be, const Tensor& t);

// The rows of a list of rows, one after another.
Vec concat(const std::vector<Vec>& rows);

}  // namespace semline::stationtest
