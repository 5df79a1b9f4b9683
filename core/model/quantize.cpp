#include "core/model/quantize.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "core/model/file_type.h"
#include "core/model/gguf.h"
#include "semline/codec.h"
#include "semline/error.h"

namespace semline {

namespace {

constexpr uint32_t kQuantizationVersion = 2;  // llama.cpp's marker for the current block layouts

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

}  // namespace

DType quantize_choice(std::string_view name, const Tensor& t, DType target) {
  if ((t.ndim != 2 && t.ndim != 3) || !is_float(t.dtype)) return t.dtype;
  if (name.find("ffn_gate_inp") != std::string_view::npos) return t.dtype;
  return t.ne[0] % dtype_block_size(target) == 0 ? target : t.dtype;
}

void quantize_gguf(const std::filesystem::path& in, const std::filesystem::path& out, DType target,
                   const gguf::Progress& progress) {
  if (target != DType::Q8_0 && target != DType::Q4_0 && target != DType::F16 && target != DType::BF16)
    throw Error(fmt::format("quantize: target {} is not supported; choose Q8_0, Q4_0, F16 or BF16",
                            dtype_name(target)));
  auto src = gguf::GgufFile::open(in);
  const bool blocks = dtype_block_size(target) > 1;
  gguf::GgufWriter w;
  bool file_type_seen = false;
  for (const auto& [key, value] : src->metadata()) {
    if (key == "general.file_type") {
      w.add_u32(key, llama_file_type(target));
      file_type_seen = true;
    } else {
      w.add_meta(key, value);
    }
  }
  if (!file_type_seen) w.add_u32("general.file_type", llama_file_type(target));
  if (blocks && !w.has_meta("general.quantization_version"))
    w.add_u32("general.quantization_version", kQuantizationVersion);

  size_t converted = 0;
  for (const gguf::TensorInfo& t : src->tensors()) {
    const Tensor& v = t.view;
    std::vector<int64_t> shape(v.ne, v.ne + v.ndim);
    DType to = quantize_choice(t.name, v, target);
    if (to == v.dtype) {
      w.add_tensor(t.name, v.dtype, shape, std::span<const uint8_t>(static_cast<const uint8_t*>(v.host), t.bytes));
      continue;
    }
    ++converted;
    w.add_tensor(t.name, to, shape, [v, to](std::span<uint8_t> dst) {
      std::vector<float> row(static_cast<size_t>(v.ne[0]));
      const int64_t out_row = dtype_row_bytes(to, v.ne[0]);
      for (int64_t r = 0; r < v.rows(); ++r) {
        dequantize_row(v.dtype, static_cast<const uint8_t*>(v.host) + r * v.nb[1], row.data(), v.ne[0]);
        quantize_row(to, row.data(), dst.data() + r * out_row, v.ne[0]);
      }
    });
  }
  spdlog::debug("quantize: {} of {} tensors of {} to {}", converted, src->tensors().size(), src->path(),
                dtype_name(target));
  w.write(out, progress);
}

}  // namespace semline
