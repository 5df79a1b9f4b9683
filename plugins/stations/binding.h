// How the stations written once bind weights, check activations and lay out scratch, over a
// backend's kernels (stations/kernels.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <semline/stage.h>

#include "stations/kernels.h"

namespace semline::stations {

// The host view of the weight bound to `role`, checked: present, a dtype the stations take,
// shape ne = want (unlisted dimensions 1), whole blocks per row, rows stored one after another
// within each matrix. `dims` names the expected sizes in messages, e.g. "(n_embd, n_ff)".
Tensor weight_view(const StageContext& ctx, std::string_view role, std::initializer_list<int64_t> want,
                   const char* dims);
// The vector bound to `role` (shape [n], any weight dtype) as floats.
std::vector<float> weight_vector(const StageContext& ctx, std::string_view role, int64_t n, const char* dims);
// The matrix bound to `role` (ne = {n0, n1}, any weight dtype) as floats, row after row.
std::vector<float> weight_floats(const StageContext& ctx, std::string_view role, int64_t n0, int64_t n1,
                                 const char* dims);

// The matrix of `role`, ne = {n_in, n_out}, with the bias of `bias_role` when the station binds one
// (nullptr: none), bound by the backend for products of up to max_rows rows.
// bind_linear_part: rows [first, first + n_out) of a fused matrix of `role` with `rows` rows.
std::unique_ptr<LinearWeight> bind_linear(const StageContext& ctx, Kernels& k, std::string_view role,
                                          int64_t n_in, int64_t n_out, const char* dims, const char* bias_role,
                                          int64_t max_rows);

// A stage's input or output as `rows` F32 rows of `width` values on k's backend (throws naming
// `what` of `label` otherwise): a Tensor with ne = {width, rows} and the caller's row stride.
std::unique_ptr<LinearWeight> bind_linear_part(const StageContext& ctx, Kernels& k, std::string_view role,
                                               int64_t n_in, int64_t rows, int64_t first, int64_t n_out,
                                               const char* dims, int64_t max_rows);

Tensor activation_rows(const Kernels& k, const Tensor& t, int64_t width, int64_t rows, const char* what,
                       const std::string& label);
// Rows [first, first + rows) of rows made by activation_rows.
Tensor row_range(const Tensor& t, int64_t first, int64_t rows);
// Columns [first, first + width) of such rows: the same rows, `first` values in (a part of a fused
// projection's output).
Tensor columns(const Tensor& t, int64_t first, int64_t width);

// Pieces of the backend's scratch area, 64-byte aligned, laid out once when a station is bound.
class ScratchPlan {
 public:
  size_t add(size_t bytes) {
    const size_t at = total_;
    total_ += (bytes + 63) / 64 * 64;
    return at;
  }
  size_t add_rows(int64_t width, int64_t rows) { return add(static_cast<size_t>(width * rows) * 4); }
  size_t total() const { return total_; }

 private:
  size_t total_ = 0;
};

// What every station written once holds: its backend's kernels, its label for messages, the
// model's hyper-parameters, the most tokens a step may carry (max_batch_tokens, checked positive: scratch is sized by it) and the
// layout of the scratch it reserves.
class Station : public Stage {
 protected:
  Station(const StageContext& ctx, Kernels& k);
  // Throws unless the step carries at most max_tokens_ tokens, then begins it on the backend.
  void begin(const Step& step);
  // begin, then the stage's input and output as the step's rows of `width` (activation_rows).
  struct Rows {
    Tensor in, out;
  };
  Rows begin_rows(const Step& step, const Tensor& in, const Tensor& out, int64_t width);
  // Whether the result is added into out: Add, or Natural where the station's kind adds
  // (`natural`). Only stations that set takes_out_modes_ are given Write or Add (begin checks).
  static bool adds(const Step& step, bool natural) {
    return step.out == OutMode::Add || (step.out == OutMode::Natural && natural);
  }

  Kernels& k_;
  const std::string label_;
  const HParams hp_;
  const int32_t max_tokens_;
  ScratchPlan plan_;
  bool takes_out_modes_ = false;  // attention, ffn/dense and the norms: Write and Add as asked
};

}  // namespace semline::stations
