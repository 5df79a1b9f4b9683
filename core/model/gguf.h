// GGUF reader: a model file mapped read-only, its metadata and tensor table indexed, zero-copy.
//
// Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count; metadata
// entries {string key, u32 type, value}; tensor entries {string name, u32 n_dims, u64 ne[n_dims],
// u32 dtype, u64 offset}; padding to the alignment (general.alignment, default 32); tensor data,
// each tensor at an aligned offset from the start of that data section. A string is a u64 length
// and that many bytes; an array is u32 element type, u64 count and the elements.
//
// Versions 2 and 3 share this layout (3 only added big-endian files, refused here), so both are
// read. Every count and size is checked against the bytes left in the file and against Limits
// before anything is allocated; a bad file gives one semline::Error starting with its name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model/model_file.h"
#include "semline/model.h"
#include "semline/tensor.h"

namespace semline::gguf {

inline constexpr uint32_t kDefaultAlignment = 32;

struct Limits {
  // Memory the parsed header may take: metadata entries, string-array and nested-array indexes,
  // the tensor table and the name lookups (values themselves stay in the file).
  uint64_t max_metadata_bytes = uint64_t{256} << 20;
  uint32_t max_array_depth = 4;  // an array is depth 1, an array of arrays depth 2, ...
  uint64_t max_tensors = uint64_t{1} << 20;
  uint64_t max_name_bytes = uint64_t{1} << 16;  // length of a metadata key or tensor name
};

using TensorInfo = semline::TensorInfo;  // views into the mapped file

class GgufFile : public ModelFile {
 public:
  static std::unique_ptr<GgufFile> open(const std::filesystem::path& path, const Limits& limits = {});
  // Reads a GGUF image held by the caller, who keeps the bytes alive as long as the result;
  // `name` stands for the file in messages and path().
  static std::unique_ptr<GgufFile> from_memory(std::span<const uint8_t> bytes, std::string name,
                                               const Limits& limits = {});
  ~GgufFile() override;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }
  std::span<const uint8_t> bytes() const { return bytes_; }

  const std::vector<std::pair<std::string, MetaValue>>& metadata() const override { return metadata_; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  const TensorInfo* tensor_info(std::string_view name) const override;
  std::string format() const override;

  const MetaValue* meta(std::string_view key) const override;
  std::string path() const override { return name_; }

 private:
  struct Index;
  friend class Parser;
  GgufFile();
  void build(const Limits& limits);

  std::string name_;
  std::shared_ptr<const void> owner_;  // keeps the mapping alive; null for from_memory
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, MetaValue>> metadata_;
  std::vector<TensorInfo> tensors_;
  std::unique_ptr<Index> index_;
};

// "Q4_K" for a GGUF tensor type id semline may not support; "unknown" when GGUF has no such id.
std::string ggml_type_name(uint32_t id);

}  // namespace semline::gguf
