// A whole file mapped read-only into memory, for zero-copy readers of model files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

namespace semline {

class MappedFile {
 public:
  // Throws semline::Error naming the path when the file cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace semline
