// safetensors reader: a file mapped read-only, its JSON header parsed and every entry checked
// against the file before anything reads a tensor.
//
// Layout: u64 little-endian header length N; N bytes of JSON, an object mapping each tensor name
// to {"dtype": "F32", "shape": [d0, d1, ...] (outermost first), "data_offsets": [begin, end]}
// plus an optional "__metadata__" object of strings; then the data section, to which the offsets
// are relative. Hostile headers give one semline::Error naming the file and the entry: a length
// past the end of the file or above Limits, bad JSON, unknown dtypes, shapes whose element count
// overflows, offsets out of range, inverted or overlapping, or a byte range that does not hold
// exactly shape x dtype size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "semline/tensor.h"

namespace semline::safetensors {

struct Limits {
  uint64_t max_header_bytes = 100'000'000;  // the cap of the format's reference reader
  uint64_t max_tensors = uint64_t{1} << 20;
};

struct Entry {
  std::string name;
  DType dtype = DType::F32;       // F32, F16 or BF16: what semline computes with
  std::vector<int64_t> shape;     // as stored, outermost first; at most 4 dimensions
  uint64_t begin = 0, end = 0;    // byte range in the data section
  const uint8_t* data = nullptr;  // the first byte (unaligned in general)
  uint64_t elements() const;
};

class File {
 public:
  static std::unique_ptr<File> open(const std::filesystem::path& path, const Limits& limits = {});
  // Reads an image held by the caller, who keeps the bytes alive as long as the result; `name`
  // stands for the file in messages.
  static std::unique_ptr<File> from_memory(std::span<const uint8_t> bytes, std::string name,
                                           const Limits& limits = {});

  const std::string& path() const { return name_; }
  uint64_t file_size() const { return bytes_.size(); }
  uint64_t data_offset() const { return data_offset_; }  // 8 + N
  const std::vector<Entry>& entries() const { return entries_; }  // in data order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // __metadata__

 private:
  File() = default;
  void parse(const Limits& limits);

  std::string name_;
  std::shared_ptr<const void> owner_;  // keeps the mapping alive; null for from_memory
  std::span<const uint8_t> bytes_;
  uint64_t data_offset_ = 0;
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace semline::safetensors
