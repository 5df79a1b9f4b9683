// What the backend plugin tests (cpu, vulkan) share: the seed, random data, weights in every
// dtype with their exact float64 values, a small in-memory model and a registry that records
// entries.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <semline/model.h>
#include <semline/registry.h>

#include "common/seed.h"

namespace semline::testing {

std::vector<float> random_floats(int64_t n, float scale = 1.0f);

// A weight matrix [n_out][n_in] stored in `dtype` and its exact values as double.
struct Weight {
  DType dtype = DType::F32;
  int64_t n_in = 0, n_out = 0;
  std::vector<uint64_t> bytes;   // the stored rows (8-byte aligned storage)
  std::vector<double> value;     // [n_out][n_in], dequantised exactly
  std::vector<double> original;  // [n_out][n_in], the floats before rounding to dtype
  // The stage meets this weight's input quantised to 8 bits in blocks of 32 (the cpu plugin's
  // Q8_0 / Q4_0 products): the reference matvec does the same.
  bool q8_input = false;
  const void* data() const { return bytes.data(); }
  size_t row_bytes() const { return static_cast<size_t>(dtype_row_bytes(dtype, n_in)); }
};
Weight make_weight(DType dtype, int64_t n_in, int64_t n_out, float scale);

// A model file held in memory: named weights, no metadata.
class FakeModel final : public ModelView {
 public:
  // `q8_input`: which dtypes the backend under test meets with 8-bit input (null: none).
  explicit FakeModel(bool (*q8_input)(DType) = nullptr) : q8_input_(q8_input) {}
  const Weight& add(const std::string& name, DType dtype, int64_t n_in, int64_t n_out, float scale);
  // A stack of n_expert matrices [n_out][n_in], ne = {n_in, n_out, n_expert} (Mixtral's experts);
  // its values are [n_expert * n_out][n_in], expert e from row e * n_out.
  const Weight& add_experts(const std::string& name, DType dtype, int64_t n_in, int64_t n_out, int64_t n_expert,
                            float scale);
  // Replaces the values of a weight ([n_out][n_in] floats), stored in its dtype again. On a
  // device backend, before a stage binds it: the backend copies weights to the device then.
  void set_values(const std::string& name, const std::vector<float>& values);
  // Overwrites the stored bytes of rows [row0, row0 + rows) with all-ones bits: NaN scales or
  // values in every dtype, so any read of them shows in the results. Before a stage binds it.
  void poison(const std::string& name, int64_t row0, int64_t rows);
  const MetaValue* meta(std::string_view) const override { return nullptr; }
  const Tensor* weight(std::string_view name) const override;
  std::string path() const override { return "fake.gguf"; }
  std::vector<std::string_view> meta_keys() const override { return {}; }
  std::vector<std::string_view> weight_names() const override;
  const Weight& values(const std::string& name) const { return weights_.at(name).first; }

 private:
  bool (*q8_input_)(DType);
  std::map<std::string, std::pair<Weight, Tensor>, std::less<>> weights_;
};

class RecordingRegistry final : public Registry {
 public:
  void add_stage(StageEntry e) override { stages.push_back(std::move(e)); }
  void add_backend(BackendEntry e) override { backends.push_back(std::move(e)); }
  void add_arch(ArchTemplate a) override { archs.push_back(std::move(a)); }
  void log(LogLevel, std::string_view) override {}
  void add_proposer(ProposerEntry e) override { proposers.push_back(std::move(e)); }
  void add_comm(CommEntry e) override { comms.push_back(std::move(e)); }
  const StageEntry& stage(StageKind kind, const std::string& variant) const;

  std::vector<StageEntry> stages;
  std::vector<BackendEntry> backends;
  std::vector<ArchTemplate> archs;
  std::vector<ProposerEntry> proposers;
  std::vector<CommEntry> comms;
};

}  // namespace semline::testing
