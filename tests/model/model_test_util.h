// Helpers of the model tests: a scratch folder, a byte builder for hand-made GGUF files, and
// error-message matching.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include "core/model/gguf.h"
#include "semline/error.h"

namespace semline::test {

inline std::filesystem::path models_dir() { return SEMLINE_MODELS_DIR; }

// A fresh folder under the system temp directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("semline-model-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
             std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

inline std::vector<uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE(f.good());
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// Little-endian bytes appended field by field.
class Bytes {
 public:
  Bytes() { b_.reserve(256); }
  Bytes& raw(const void* p, size_t n) {
    size_t at = b_.size();
    b_.resize(at + n);
    if (n) std::memcpy(b_.data() + at, p, n);
    return *this;
  }
  Bytes& u8(uint8_t v) { return raw(&v, 1); }
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& i32(int32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& f32(float v) { return raw(&v, 4); }
  Bytes& str(std::string_view s) { return u64(s.size()).raw(s.data(), s.size()); }
  Bytes& zeros(size_t n) {
    b_.resize(b_.size() + n, 0);
    return *this;
  }
  Bytes& pad_to(size_t a) { return zeros((a - b_.size() % a) % a); }
  // "GGUF", version, tensor count, metadata count.
  Bytes& header(uint64_t tensors, uint64_t meta, uint32_t version = 3) {
    return raw("GGUF", 4).u32(version).u64(tensors).u64(meta);
  }
  Bytes& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
  Bytes& kv_str(std::string_view key, std::string_view v) { return str(key).u32(8).str(v); }
  // A tensor entry: name, dims (innermost first), dtype id, data offset.
  Bytes& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  size_t size() const { return b_.size(); }
  const std::vector<uint8_t>& vec() const { return b_; }
  operator std::span<const uint8_t>() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

// Runs f, which must throw semline::Error, and returns its message.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const semline::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("expected semline::Error, got another exception: " << e.what());
  }
  FAIL("expected semline::Error, nothing was thrown");
  return {};
}

// The message must contain every piece, and be a single line.
inline void check_message(const std::string& msg, std::initializer_list<std::string_view> pieces) {
  INFO("message: " << msg);
  CHECK(msg.find('\n') == std::string::npos);
  for (std::string_view p : pieces) CHECK(msg.find(p) != std::string::npos);
}

// Every tensor of `want` stands in `got` under its name with the same dtype, shape and bytes.
inline void check_same_tensors(const gguf::GgufFile& got, const gguf::GgufFile& want) {
  REQUIRE(got.tensors().size() == want.tensors().size());
  for (const gguf::TensorInfo& t : want.tensors()) {
    INFO(t.name);
    const gguf::TensorInfo* g = got.tensor_info(t.name);
    REQUIRE(g);
    REQUIRE(tensor_shape_string(g->view) == tensor_shape_string(t.view));
    REQUIRE(g->bytes == t.bytes);
    CHECK(std::memcmp(g->view.host, t.view.host, t.bytes) == 0);
  }
}

// model.safetensors of F32 tensors whose value k is (tensor index) * 1000 + k.
inline std::vector<uint8_t> safetensors_of(const std::map<std::string, std::vector<int64_t>>& shapes) {
  std::string header = "{";
  std::vector<float> data;
  int index = 0;
  for (const auto& [name, shape] : shapes) {
    int64_t n = 1;
    std::string dims;
    for (int64_t d : shape) {
      n *= d;
      if (!dims.empty()) dims += ',';
      dims += std::to_string(d);
    }
    const size_t begin = data.size() * 4;
    for (int64_t k = 0; k < n; ++k) data.push_back(static_cast<float>(index * 1000 + k));
    if (index++) header += ',';
    header.append("\"").append(name).append("\":{\"dtype\":\"F32\",\"shape\":[").append(dims);
    header.append("],\"data_offsets\":[").append(std::to_string(begin)).append(",");
    header.append(std::to_string(data.size() * 4)).append("]}");
  }
  header += "}";
  Bytes b;
  b.u64(header.size()).raw(header.data(), header.size()).raw(data.data(), data.size() * 4);
  return b.vec();
}

inline std::vector<uint8_t> text(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

}  // namespace semline::test
