// GGUF v3 writer: metadata collected in memory, tensor data streamed one tensor at a time.
//
// Metadata and tensors are written in the order they are added. Tensor data starts at an aligned
// offset (general.alignment when added, else 32) and every tensor is padded to the alignment, so a
// model never has to be held in memory: a tensor is either a caller's byte span (kept alive until
// write() returns) or a fill callback run when that tensor's turn comes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "semline/model.h"
#include "semline/tensor.h"

namespace semline::gguf {

using Progress = std::function<void(uint64_t done, uint64_t total)>;  // tensor bytes written so far
using Fill = std::function<void(std::span<uint8_t> dst)>;              // writes all of one tensor

template <class T>
constexpr MetaType meta_type_of() {
  if constexpr (std::is_same_v<T, bool>) return MetaType::BOOL;
  else if constexpr (std::is_same_v<T, uint8_t>) return MetaType::U8;
  else if constexpr (std::is_same_v<T, int8_t>) return MetaType::I8;
  else if constexpr (std::is_same_v<T, uint16_t>) return MetaType::U16;
  else if constexpr (std::is_same_v<T, int16_t>) return MetaType::I16;
  else if constexpr (std::is_same_v<T, uint32_t>) return MetaType::U32;
  else if constexpr (std::is_same_v<T, int32_t>) return MetaType::I32;
  else if constexpr (std::is_same_v<T, uint64_t>) return MetaType::U64;
  else if constexpr (std::is_same_v<T, int64_t>) return MetaType::I64;
  else if constexpr (std::is_same_v<T, float>) return MetaType::F32;
  else if constexpr (std::is_same_v<T, double>) return MetaType::F64;
  else static_assert(sizeof(T) == 0, "no GGUF metadata type for this C++ type");
}

class GgufWriter {
 public:
  GgufWriter();
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Each key may be added once; general.alignment must be a power of two and sets the alignment.
  void add_u8(std::string key, uint8_t v) { add_scalar(std::move(key), MetaType::U8, &v, 1); }
  void add_i8(std::string key, int8_t v) { add_scalar(std::move(key), MetaType::I8, &v, 1); }
  void add_u16(std::string key, uint16_t v) { add_scalar(std::move(key), MetaType::U16, &v, 2); }
  void add_i16(std::string key, int16_t v) { add_scalar(std::move(key), MetaType::I16, &v, 2); }
  void add_u32(std::string key, uint32_t v) { add_scalar(std::move(key), MetaType::U32, &v, 4); }
  void add_i32(std::string key, int32_t v) { add_scalar(std::move(key), MetaType::I32, &v, 4); }
  void add_u64(std::string key, uint64_t v) { add_scalar(std::move(key), MetaType::U64, &v, 8); }
  void add_i64(std::string key, int64_t v) { add_scalar(std::move(key), MetaType::I64, &v, 8); }
  void add_f32(std::string key, float v) { add_scalar(std::move(key), MetaType::F32, &v, 4); }
  void add_f64(std::string key, double v) { add_scalar(std::move(key), MetaType::F64, &v, 8); }
  void add_bool(std::string key, bool v) {
    uint8_t b = v ? 1 : 0;
    add_scalar(std::move(key), MetaType::BOOL, &b, 1);
  }
  void add_string(std::string key, std::string_view v);

  template <class T>
  void add_array(std::string key, std::span<const T> values) {
    add_numeric_array(std::move(key), meta_type_of<T>(), values.data(), values.size());
  }
  template <class T>
  void add_array(std::string key, const std::vector<T>& values) {
    add_array(std::move(key), std::span<const T>(values));
  }
  void add_string_array(std::string key, std::span<const std::string> values);
  void add_string_array(std::string key, std::span<const std::string_view> values);
  // Any value, as a reader returns it (arrays of arrays included); copies what it points to.
  void add_meta(std::string key, const MetaValue& value);
  bool has_meta(std::string_view key) const;

  // shape is innermost first (ne[0] = row length), 1 to 4 dimensions.
  void add_tensor(std::string name, DType type, const std::vector<int64_t>& shape, Fill fill);
  void add_tensor(std::string name, DType type, const std::vector<int64_t>& shape, std::span<const uint8_t> bytes);

  uint64_t alignment() const;
  uint64_t tensor_bytes() const;  // sum of the tensor sizes, padding excluded

  // Writes next to `out` first and renames on success, so a failed write leaves no partial model.
  void write(const std::filesystem::path& out, const Progress& progress = {}) const;

 private:
  struct State;
  void add_scalar(std::string key, MetaType type, const void* v, size_t n);
  void add_numeric_array(std::string key, MetaType elem, const void* data, uint64_t count);
  void add_encoded(std::string key, std::vector<uint8_t> bytes);
  void add_tensor_entry(std::string name, DType type, const std::vector<int64_t>& shape, Fill fill,
                        std::span<const uint8_t> bytes);
  std::unique_ptr<State> s_;
};

}  // namespace semline::gguf
