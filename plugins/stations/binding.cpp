#include "stations/binding.h"

#include <semline/codec.h>
#include <semline/error.h>

#include "stations/stations.h"

namespace semline::stations {
namespace {

std::string weight_label(const StageContext& ctx, std::string_view role) {
  return station_label(ctx) + ": tensor '" + tensor_name(ctx, role) + "' (" + std::string(role) + ")";
}

}  // namespace

Tensor weight_view(const StageContext& ctx, std::string_view role, std::initializer_list<int64_t> want,
                   const char* dims) {
  const Tensor* found = ctx.find_weight(role);
  if (!found) {
    ctx.weight(role);  // throws the context's own message naming the missing tensor
    throw Error(station_label(ctx) + ": no weight for role '" + std::string(role) + "'");
  }
  const Tensor& t = *found;
  const std::string what = weight_label(ctx, role);
  if (!weight_dtype_supported(t.dtype))
    throw Error(what + " has dtype " + dtype_name(t.dtype) + "; the stations take F32, F16, BF16, Q8_0, Q4_0");
  bool shape_ok = t.ndim <= static_cast<int32_t>(want.size());
  std::string expected = "[";
  int d = 0;
  for (int64_t n : want) {
    shape_ok = shape_ok && t.ne[d] == n;
    expected += (d++ ? ", " : "") + std::to_string(n);
  }
  for (; d < kMaxDims; ++d) shape_ok = shape_ok && t.ne[d] == 1;
  if (!shape_ok) throw Error(what + " has shape " + tensor_shape_string(t) + ", expected " + expected + "] " + dims);
  if (t.ne[0] % dtype_block_size(t.dtype) != 0)
    throw Error(what + " has rows of " + std::to_string(t.ne[0]) + " values, not a multiple of the " +
                dtype_name(t.dtype) + " block size " + std::to_string(dtype_block_size(t.dtype)));
  if (t.nb[0] != dtype_block_bytes(t.dtype) || (t.ne[1] > 1 && t.nb[1] < t.row_bytes()) ||
      (t.ne[2] > 1 && t.nb[2] < t.nb[1] * t.ne[1]))
    throw Error(what + " is not stored row by row (strides " + std::to_string(t.nb[0]) + ", " +
                std::to_string(t.nb[1]) + ", " + std::to_string(t.nb[2]) + ")");
  if (!t.host) throw Error(what + " has no host view to bind from");
  return t;
}

std::vector<float> weight_vector(const StageContext& ctx, std::string_view role, int64_t n, const char* dims) {
  const Tensor t = weight_view(ctx, role, {n}, dims);
  std::vector<float> v(static_cast<size_t>(n));
  dequantize_row(t.dtype, t.host, v.data(), n);
  return v;
}

std::vector<float> weight_floats(const StageContext& ctx, std::string_view role, int64_t n0, int64_t n1,
                                 const char* dims) {
  const Tensor t = weight_view(ctx, role, {n0, n1}, dims);
  std::vector<float> v(static_cast<size_t>(n0 * n1));
  for (int64_t r = 0; r < n1; ++r)
    dequantize_row(t.dtype, static_cast<const char*>(t.host) + r * t.nb[1], v.data() + r * n0, n0);
  return v;
}

std::unique_ptr<LinearWeight> bind_linear(const StageContext& ctx, Kernels& k, std::string_view role,
                                          int64_t n_in, int64_t n_out, const char* dims, const char* bias_role,
                                          int64_t max_rows) {
  const Tensor view = weight_view(ctx, role, {n_in, n_out}, dims);
  std::vector<float> bias;
  if (bias_role && is_bound(ctx, bias_role)) bias = weight_vector(ctx, bias_role, n_out, "(n_out)");
  return k.bind_linear(ctx, role, view, std::move(bias), max_rows);
}

std::unique_ptr<LinearWeight> bind_linear_part(const StageContext& ctx, Kernels& k, std::string_view role,
                                               int64_t n_in, int64_t rows, int64_t first, int64_t n_out,
                                               const char* dims, int64_t max_rows) {
  Tensor part = weight_view(ctx, role, {n_in, rows}, dims);
  part.host = static_cast<char*>(part.host) + static_cast<size_t>(first) * part.nb[1];
  part.ne[1] = n_out;
  return k.bind_linear(ctx, role, part, {}, max_rows);
}

Tensor activation_rows(const Kernels& k, const Tensor& t, int64_t width, int64_t rows, const char* what,
                       const std::string& label) {
  auto name = [&] { return label + ": " + what; };  // messages only: this runs every step
  if (t.dtype != DType::F32 || t.nb[0] != 4 || t.ne[0] < width || (rows > 1 && t.nb[1] % 4 != 0))
    throw Error(name() + " must be F32 rows of " + std::to_string(width) + " values, got " + tensor_shape_string(t));
  if (t.rows() < rows)
    throw Error(name() + " " + tensor_shape_string(t) + " has " + std::to_string(t.rows()) + " rows; the step needs " +
                std::to_string(rows));
  const int64_t stride = rows > 1 ? t.nb[1] : width * 4;
  if (stride < width * 4) throw Error(name() + " " + tensor_shape_string(t) + " has overlapping rows");
  Tensor r = t;
  r.ndim = 2;
  r.ne[0] = width;
  r.ne[1] = rows;
  r.ne[2] = r.ne[3] = 1;
  r.nb[1] = stride;
  r.nb[2] = r.nb[3] = stride * rows;
  k.check_memory(r, what, label);
  return r;
}

Tensor row_range(const Tensor& t, int64_t first, int64_t rows) {
  Tensor r = t;
  r.ne[1] = rows;
  r.offset += static_cast<size_t>(first * t.nb[1]);
  if (r.host) r.host = static_cast<char*>(r.host) + first * t.nb[1];
  r.nb[2] = r.nb[3] = t.nb[1] * rows;
  return r;
}

Tensor columns(const Tensor& t, int64_t first, int64_t width) {
  Tensor c = t;
  c.ne[0] = width;
  c.offset += static_cast<size_t>(first) * 4;
  if (c.host) c.host = static_cast<char*>(c.host) + first * 4;
  return c;
}

namespace {

int32_t max_tokens_of(const StageContext& ctx) {
  if (ctx.max_batch_tokens <= 0) throw Error(station_label(ctx) + ": max_batch_tokens must be positive");
  return ctx.max_batch_tokens;
}

}  // namespace

Station::Station(const StageContext& ctx, Kernels& k)
    : k_(k), label_(station_label(ctx)), hp_(hparams_of(ctx)), max_tokens_(max_tokens_of(ctx)) {}

void Station::begin(const Step& step) {
  const int32_t n = step.batch.n_tokens;
  if (n > max_tokens_ || n < 0)
    throw Error(label_ + ": batch of " + std::to_string(n) + " tokens exceeds max_batch_tokens " +
                std::to_string(max_tokens_));
  if (step.out != OutMode::Natural && !takes_out_modes_)
    throw Error(label_ + ": the line asks it to " + (step.out == OutMode::Write ? "write" : "add") +
                " its result; this station only computes its own way (a post norm follows attention or ffn/dense)");
  k_.begin(step, label_);
}

Station::Rows Station::begin_rows(const Step& step, const Tensor& in, const Tensor& out, int64_t width) {
  begin(step);
  const int64_t m = step.batch.n_tokens;
  return {activation_rows(k_, in, width, m, "input", label_), activation_rows(k_, out, width, m, "output", label_)};
}

}  // namespace semline::stations
