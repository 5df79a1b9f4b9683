#include "core/model/safetensors.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/model/mapped_file.h"
#include "semline/error.h"

namespace semline::safetensors {

namespace {

using json = nlohmann::json;

// The format's dtype names semline computes with; the others it names (I64, F64, F8_E4M3, ...)
// are refused with the list.
bool dtype_of(const std::string& s, DType& out) {
  if (s == "F32") out = DType::F32;
  else if (s == "F16") out = DType::F16;
  else if (s == "BF16") out = DType::BF16;
  else return false;
  return true;
}

// A JSON value holding a non-negative integer.
bool as_u64(const json& j, uint64_t& out) {
  if (!j.is_number_unsigned()) return false;
  out = j.get<uint64_t>();
  return true;
}

}  // namespace

uint64_t Entry::elements() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::unique_ptr<File> File::open(const std::filesystem::path& path, const Limits& limits) {
  auto map = std::make_shared<MappedFile>(path);
  std::unique_ptr<File> f(new File());
  f->name_ = path.string();
  f->bytes_ = map->bytes();
  f->owner_ = std::move(map);
  f->parse(limits);
  return f;
}

std::unique_ptr<File> File::from_memory(std::span<const uint8_t> bytes, std::string name, const Limits& limits) {
  std::unique_ptr<File> f(new File());
  f->name_ = std::move(name);
  f->bytes_ = bytes;
  f->parse(limits);
  return f;
}

void File::parse(const Limits& limits) {
  auto fail = [&](const std::string& what) { throw Error(name_ + ": " + what); };
  if (bytes_.size() < 8)
    fail(fmt::format("file is {} bytes, shorter than the 8-byte safetensors header length", bytes_.size()));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | bytes_[i];
  if (n > limits.max_header_bytes)
    fail(fmt::format("header length {} is above the {}-byte limit: not a safetensors file, or a hostile one", n,
                     limits.max_header_bytes));
  if (n > bytes_.size() - 8)
    fail(fmt::format("header length {} runs past the end of the {}-byte file (truncated?)", n, bytes_.size()));
  data_offset_ = 8 + n;
  const uint64_t data_size = bytes_.size() - data_offset_;

  json header;
  try {
    header = json::parse(bytes_.begin() + 8, bytes_.begin() + static_cast<ptrdiff_t>(data_offset_));
  } catch (const json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(std::string("header is JSON ") + header.type_name() + ", expected an object");
  if (header.size() > limits.max_tensors + 1)
    fail(fmt::format("header lists {} entries, more than the limit of {} tensors", header.size(), limits.max_tensors));

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail("__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail("__metadata__ value '" + m.key() + "' must be a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = "tensor '" + name + "'";
    if (!v.is_object()) fail(what + " must be an object with dtype, shape and data_offsets");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!v.contains(key)) fail(what + " has no '" + key + "'");
    Entry e;
    e.name = name;
    if (!v["dtype"].is_string()) fail(what + ": dtype must be a string");
    const std::string dt = v["dtype"].get<std::string>();
    if (!dtype_of(dt, e.dtype)) fail(what + " has dtype " + dt + "; semline reads F32, F16 and BF16");
    const json& shape = v["shape"];
    if (!shape.is_array()) fail(what + ": shape must be an array of non-negative integers");
    if (shape.size() > static_cast<size_t>(kMaxDims))
      fail(fmt::format("{} has {} dimensions; semline tensors have at most {}", what, shape.size(), kMaxDims));
    uint64_t elements = 1;
    for (const json& d : shape) {
      uint64_t x = 0;
      if (!as_u64(d, x)) fail(what + ": shape " + shape.dump() + " must hold non-negative integers");
      // Beyond 2^60 elements no byte count of a file could match; stopping there keeps
      // elements * dtype size (at most 4) from overflowing too.
      if (__builtin_mul_overflow(elements, x, &elements) || elements > (uint64_t{1} << 60))
        fail(what + ": shape " + shape.dump() + " has more elements than any file can hold");
      e.shape.push_back(static_cast<int64_t>(x));
    }
    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !as_u64(off[0], e.begin) || !as_u64(off[1], e.end))
      fail(what + ": data_offsets must be [begin, end], two non-negative integers");
    if (e.begin > e.end) fail(fmt::format("{}: data_offsets [{}, {}] are inverted", what, e.begin, e.end));
    if (e.end > data_size)
      fail(fmt::format("{}: data_offsets [{}, {}] run past the {}-byte data section (file truncated?)", what, e.begin,
                       e.end, data_size));
    const uint64_t want = elements * static_cast<uint64_t>(dtype_block_bytes(e.dtype));
    if (e.end - e.begin != want)
      fail(fmt::format("{}: data_offsets [{}, {}] hold {} bytes, but {} {} takes {}", what, e.begin, e.end,
                       e.end - e.begin, dt, shape.dump(), want));
    e.data = bytes_.data() + data_offset_ + e.begin;
    entries_.push_back(std::move(e));
  }
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  for (size_t i = 1; i < entries_.size(); ++i)
    if (entries_[i].begin < entries_[i - 1].end)
      fail(fmt::format("tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", entries_[i - 1].name, entries_[i - 1].begin,
                       entries_[i - 1].end, entries_[i].name, entries_[i].begin, entries_[i].end));
}

}  // namespace semline::safetensors
