#include "core/model/gguf_writer.h"

#include <spdlog/fmt/fmt.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "semline/error.h"

namespace semline::gguf {

namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlign = 32;

void put(std::vector<uint8_t>& out, const void* p, size_t n) {
  if (!n) return;
  size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) { put(out, &v, 4); }
void put_u64(std::vector<uint8_t>& out, uint64_t v) { put(out, &v, 8); }
void put_string(std::vector<uint8_t>& out, std::string_view s) {
  put_u64(out, s.size());
  put(out, s.data(), s.size());
}

// The value part of a metadata entry (without its type id), recursively for arrays.
void encode_value(std::vector<uint8_t>& out, const MetaValue& v, const std::string& key) {
  switch (v.type) {
    case MetaType::STRING:
      put_string(out, v.str);
      return;
    case MetaType::ARRAY:
      put_u32(out, static_cast<uint32_t>(v.elem));
      put_u64(out, v.count);
      if (v.elem == MetaType::STRING) {
        if (v.strings.size() != v.count)
          throw Error(fmt::format("GGUF writer: metadata '{}' string array has {} strings but count {}", key,
                                  v.strings.size(), v.count));
        for (std::string_view s : v.strings) put_string(out, s);
      } else if (v.elem == MetaType::ARRAY) {
        if (v.arrays.size() != v.count)
          throw Error(fmt::format("GGUF writer: metadata '{}' array of arrays has {} arrays but count {}", key,
                                  v.arrays.size(), v.count));
        for (const MetaValue& a : v.arrays) encode_value(out, a, key);
      } else {
        size_t size = meta_type_size(v.elem);
        if (size == 0)
          throw Error(fmt::format("GGUF writer: metadata '{}' has unknown array element type {}", key,
                                  static_cast<uint32_t>(v.elem)));
        if (v.count && !v.raw)
          throw Error(fmt::format("GGUF writer: metadata '{}' array of {} elements has no data", key, v.count));
        put(out, v.raw, v.count * size);
      }
      return;
    case MetaType::F32: {
      float f = static_cast<float>(v.f);
      put(out, &f, 4);
      return;
    }
    case MetaType::F64:
      put(out, &v.f, 8);
      return;
    case MetaType::I8: case MetaType::I16: case MetaType::I32: case MetaType::I64:
      put(out, &v.i, meta_type_size(v.type));  // little-endian: the low bytes come first
      return;
    case MetaType::U8: case MetaType::U16: case MetaType::U32: case MetaType::U64: case MetaType::BOOL:
      put(out, &v.u, meta_type_size(v.type));
      return;
  }
  throw Error(fmt::format("GGUF writer: metadata '{}' has unknown value type {}", key,
                          static_cast<uint32_t>(v.type)));
}

uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

class OutFile {
 public:
  explicit OutFile(std::filesystem::path final_path)
      : final_(std::move(final_path)), tmp_(final_.string() + ".tmp") {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) throw Error(fmt::format("{}: cannot create: {}", tmp_.string(), std::strerror(errno)));
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  }
  ~OutFile() {
    if (f_) {
      std::fclose(f_);
      std::error_code ec;
      std::filesystem::remove(tmp_, ec);
    }
  }
  void write(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) fail("cannot write");
  }
  void zeros(size_t n) {
    static const uint8_t z[256] = {};
    while (n) {
      size_t k = std::min(n, sizeof z);
      write(z, k);
      n -= k;
    }
  }
  void commit() {
    FILE* f = f_;
    f_ = nullptr;
    if (std::fclose(f) != 0) {
      int e = errno;
      std::error_code ec;
      std::filesystem::remove(tmp_, ec);
      throw Error(fmt::format("{}: cannot write: {}", tmp_.string(), std::strerror(e)));
    }
    std::error_code ec;
    std::filesystem::rename(tmp_, final_, ec);
    if (ec) {
      std::filesystem::remove(tmp_, ec);
      throw Error(fmt::format("{}: cannot rename the finished file into place: {}", final_.string(), ec.message()));
    }
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw Error(fmt::format("{}: {}: {}", tmp_.string(), what, std::strerror(errno)));
  }
  std::filesystem::path final_, tmp_;
  FILE* f_ = nullptr;
};

}  // namespace

struct GgufWriter::State {
  struct Meta {
    std::string key;
    std::vector<uint8_t> bytes;  // type id and value
  };
  struct TensorEntry {
    std::string name;
    DType type;
    std::vector<int64_t> shape;
    uint64_t bytes;
    Fill fill;
    std::span<const uint8_t> data;
  };
  std::vector<Meta> meta;
  std::unordered_set<std::string> keys;
  std::vector<TensorEntry> tensors;
  std::unordered_set<std::string> names;
  uint64_t alignment = kDefaultAlign;
  uint64_t total = 0;
};

GgufWriter::GgufWriter() : s_(std::make_unique<State>()) {}
GgufWriter::~GgufWriter() = default;

uint64_t GgufWriter::alignment() const { return s_->alignment; }
uint64_t GgufWriter::tensor_bytes() const { return s_->total; }
bool GgufWriter::has_meta(std::string_view key) const { return s_->keys.count(std::string(key)) != 0; }

void GgufWriter::add_encoded(std::string key, std::vector<uint8_t> bytes) {
  if (s_->keys.count(key)) throw Error(fmt::format("GGUF writer: duplicate metadata key '{}'", key));
  if (key == "general.alignment") {
    uint32_t type;
    std::memcpy(&type, bytes.data(), 4);
    auto t = static_cast<MetaType>(type);
    size_t size = meta_type_size(t);
    bool is_unsigned = t == MetaType::U8 || t == MetaType::U16 || t == MetaType::U32 || t == MetaType::U64;
    uint64_t a = 0;
    if (is_unsigned) std::memcpy(&a, bytes.data() + 4, size);
    if (!is_unsigned || a == 0 || (a & (a - 1)) || a > (uint64_t{1} << 30))
      throw Error(fmt::format("GGUF writer: general.alignment must be an unsigned power of two up to 2^30, got {} {}",
                              meta_type_name(t), is_unsigned ? std::to_string(a) : std::string("value")));
    s_->alignment = a;
  }
  s_->keys.insert(key);
  s_->meta.push_back({std::move(key), std::move(bytes)});
}

void GgufWriter::add_scalar(std::string key, MetaType type, const void* v, size_t n) {
  std::vector<uint8_t> b;
  put_u32(b, static_cast<uint32_t>(type));
  put(b, v, n);
  add_encoded(std::move(key), std::move(b));
}

void GgufWriter::add_string(std::string key, std::string_view v) {
  std::vector<uint8_t> b;
  put_u32(b, static_cast<uint32_t>(MetaType::STRING));
  put_string(b, v);
  add_encoded(std::move(key), std::move(b));
}

void GgufWriter::add_numeric_array(std::string key, MetaType elem, const void* data, uint64_t count) {
  std::vector<uint8_t> b;
  put_u32(b, static_cast<uint32_t>(MetaType::ARRAY));
  put_u32(b, static_cast<uint32_t>(elem));
  put_u64(b, count);
  put(b, data, count * meta_type_size(elem));
  add_encoded(std::move(key), std::move(b));
}

void GgufWriter::add_string_array(std::string key, std::span<const std::string> values) {
  std::vector<std::string_view> views(values.begin(), values.end());
  add_string_array(std::move(key), std::span<const std::string_view>(views));
}

void GgufWriter::add_string_array(std::string key, std::span<const std::string_view> values) {
  std::vector<uint8_t> b;
  put_u32(b, static_cast<uint32_t>(MetaType::ARRAY));
  put_u32(b, static_cast<uint32_t>(MetaType::STRING));
  put_u64(b, values.size());
  for (std::string_view s : values) put_string(b, s);
  add_encoded(std::move(key), std::move(b));
}

void GgufWriter::add_meta(std::string key, const MetaValue& value) {
  std::vector<uint8_t> b;
  put_u32(b, static_cast<uint32_t>(value.type));
  encode_value(b, value, key);
  add_encoded(std::move(key), std::move(b));
}

void GgufWriter::add_tensor(std::string name, DType type, const std::vector<int64_t>& shape, Fill fill) {
  if (!fill) throw Error(fmt::format("GGUF writer: tensor '{}' has no fill function", name));
  add_tensor_entry(std::move(name), type, shape, std::move(fill), {});
}

void GgufWriter::add_tensor(std::string name, DType type, const std::vector<int64_t>& shape,
                            std::span<const uint8_t> bytes) {
  add_tensor_entry(std::move(name), type, shape, {}, bytes);
}

void GgufWriter::add_tensor_entry(std::string name, DType type, const std::vector<int64_t>& shape, Fill fill,
                                  std::span<const uint8_t> data) {
  if (s_->names.count(name)) throw Error(fmt::format("GGUF writer: duplicate tensor name '{}'", name));
  if (!dtype_is_known(static_cast<uint32_t>(type)))
    throw Error(fmt::format("GGUF writer: tensor '{}' has unknown dtype {}", name, static_cast<uint32_t>(type)));
  if (shape.empty() || shape.size() > static_cast<size_t>(kMaxDims))
    throw Error(fmt::format("GGUF writer: tensor '{}' has {} dimensions, expected 1 to {}", name, shape.size(), kMaxDims));
  int64_t elements = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 1)
      throw Error(fmt::format("GGUF writer: tensor '{}' dimension {} is {}, expected at least 1", name, d, shape[d]));
    if (__builtin_mul_overflow(elements, shape[d], &elements))
      throw Error(fmt::format("GGUF writer: tensor '{}' element count overflows", name));
  }
  int64_t block = dtype_block_size(type);
  if (shape[0] % block)
    throw Error(fmt::format("GGUF writer: tensor '{}' row length {} is not a multiple of the {} block size {}", name,
                            shape[0], dtype_name(type), block));
  uint64_t bytes = static_cast<uint64_t>(elements / block) * static_cast<uint64_t>(dtype_block_bytes(type));
  if (!fill && data.size() != bytes)
    throw Error(fmt::format("GGUF writer: tensor '{}' is given {} bytes but {} {} takes {}", name, data.size(),
                            dtype_name(type), fmt::join(shape, "x"), bytes));
  s_->names.insert(name);
  s_->total += bytes;
  s_->tensors.push_back({std::move(name), type, shape, bytes, std::move(fill), data});
}

void GgufWriter::write(const std::filesystem::path& out, const Progress& progress) const {
  const uint64_t a = s_->alignment;
  std::vector<uint8_t> head;
  head.insert(head.end(), {'G', 'G', 'U', 'F'});
  put_u32(head, kVersion);
  put_u64(head, s_->tensors.size());
  put_u64(head, s_->meta.size());
  for (const auto& m : s_->meta) {
    put_string(head, m.key);
    put(head, m.bytes.data(), m.bytes.size());
  }
  uint64_t offset = 0;
  for (const auto& t : s_->tensors) {
    put_string(head, t.name);
    put_u32(head, static_cast<uint32_t>(t.shape.size()));
    for (int64_t n : t.shape) put_u64(head, static_cast<uint64_t>(n));
    put_u32(head, static_cast<uint32_t>(t.type));
    put_u64(head, offset);
    offset = pad_to(offset + t.bytes, a);
  }
  head.resize(pad_to(head.size(), a), 0);

  OutFile f(out);
  f.write(head.data(), head.size());
  uint64_t done = 0;
  if (progress) progress(0, s_->total);
  std::vector<uint8_t> buf;
  for (const auto& t : s_->tensors) {
    if (t.fill) {
      buf.assign(t.bytes, 0);
      t.fill(std::span<uint8_t>(buf));
      f.write(buf.data(), buf.size());
    } else {
      f.write(t.data.data(), t.data.size());
    }
    f.zeros(pad_to(t.bytes, a) - t.bytes);
    done += t.bytes;
    if (progress) progress(done, s_->total);
  }
  f.commit();
}

}  // namespace semline::gguf
