// The GGUF header parser: every read bounds-checked, every count checked before it allocates.
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "core/model/gguf.h"
#include "core/model/gguf_index.h"
#include "core/util/text.h"
#include "semline/error.h"

namespace semline::gguf {

namespace {

constexpr uint64_t kHeaderBytes = 4 + 4 + 8 + 8;
// Smallest possible encodings, used to refuse counts the rest of the file cannot hold.
constexpr uint64_t kMinMetaEntry = 8 + 4 + 1;        // empty key, type, one-byte value
constexpr uint64_t kMinTensorEntry = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, one dim, type, offset
constexpr uint64_t kMinArray = 4 + 8;                 // element type and count
constexpr uint64_t kMetaTypes = 13;
// What one lookup entry costs besides the key, for the memory cap.
constexpr uint64_t kIndexNode = 64;

std::string quoted_magic(const uint8_t* p) {
  std::string text, hex;
  bool printable = true;
  for (int i = 0; i < 4; ++i) {
    printable = printable && p[i] >= 0x20 && p[i] < 0x7f;
    text += static_cast<char>(p[i]);
    hex += fmt::format("{}0x{:02x}", i ? " " : "", p[i]);
  }
  return printable ? fmt::format("'{}' ({})", text, hex) : hex;
}

}  // namespace

class Parser {
 public:
  Parser(GgufFile& file, const Limits& limits)
      : f_(file), lim_(limits), base_(file.bytes_.data()), size_(file.bytes_.size()) {}

  void run() {
    header();
    read_metadata();
    read_alignment();
    read_tensor_table();
    place_tensors();
  }

 private:
  template <class... A>
  [[noreturn]] void fail(fmt::format_string<A...> f, A&&... a) {
    throw Error(f_.name_ + ": " + fmt::format(f, std::forward<A>(a)...));
  }

  uint64_t left() const { return size_ - pos_; }

  void need(uint64_t n, std::string_view what) {
    if (n > left())
      fail("{} is truncated: it needs {} bytes at offset {} but the file ends {} bytes later", what, n,
           pos_, left());
  }

  template <class T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }

  // A count of items of at least `min_bytes` each must fit in what is left of the file.
  void check_count(uint64_t count, uint64_t min_bytes, std::string_view what) {
    if (count > left() / min_bytes) {
      if (min_bytes == 1)
        fail("{} {} exceeds the {} bytes left in the file", what, count, left());
      fail("{} {} exceeds the {} bytes left in the file ({} bytes each at least)", what, count, left(),
           min_bytes);
    }
  }

  void charge(uint64_t bytes, std::string_view what) {
    if (bytes > lim_.max_metadata_bytes - std::min(used_, lim_.max_metadata_bytes))
      fail("{} would take the header index past the memory cap of {} bytes (Limits::max_metadata_bytes)",
           what, lim_.max_metadata_bytes);
    used_ += bytes;
  }

  std::string_view read_string(std::string_view what) {
    uint64_t n = read<uint64_t>(what);
    check_count(n, 1, fmt::format("{} string length", what));
    std::string_view s(reinterpret_cast<const char*>(base_ + pos_), n);
    pos_ += n;
    return s;
  }

  std::string_view read_name(std::string_view what) {
    std::string_view s = read_string(what);
    if (s.size() > lim_.max_name_bytes)
      fail("{} is {} bytes long, more than the limit of {} (Limits::max_name_bytes)", what, s.size(),
           lim_.max_name_bytes);
    return s;
  }

  void header() {
    if (size_ >= 4 && std::memcmp(base_, "GGUF", 4) != 0)
      fail("not a GGUF file: it starts with {}, expected 'GGUF'", quoted_magic(base_));
    if (size_ < kHeaderBytes)
      fail("file is {} bytes, shorter than the {}-byte GGUF header", size_, kHeaderBytes);
    pos_ = 4;
    uint32_t v = read<uint32_t>("version");
    if (v == 0x02000000u || v == 0x03000000u)
      fail("big-endian GGUF (version {} byte-swapped) is not supported; only little-endian files are",
           __builtin_bswap32(v));
    if (v != 2 && v != 3) fail("unsupported GGUF version {} (supported: 2 and 3)", v);
    f_.version_ = v;
    n_tensors_ = read<uint64_t>("tensor count");
    n_meta_ = read<uint64_t>("metadata count");
    if (n_tensors_ > lim_.max_tensors)
      fail("tensor count {} exceeds the limit of {} (Limits::max_tensors)", n_tensors_, lim_.max_tensors);
    check_count(n_meta_, kMinMetaEntry, "metadata count");
    check_count(n_tensors_, kMinTensorEntry, "tensor count");
  }

  void read_metadata() {
    charge(n_meta_ * (sizeof(std::pair<std::string, MetaValue>) + kIndexNode), "metadata count");
    f_.metadata_.reserve(n_meta_);
    auto& index = f_.index_->meta;
    index.reserve(n_meta_);
    for (uint64_t k = 0; k < n_meta_; ++k) {
      std::string_view key = read_name(fmt::format("metadata entry #{} key", k));
      charge(key.size(), fmt::format("metadata key '{}'", printable(key)));
      if (auto it = index.find(key); it != index.end())
        fail("duplicate metadata key '{}' (entries #{} and #{})", printable(key), it->second, k);
      std::string what = fmt::format("metadata '{}'", printable(key));
      uint32_t type = read<uint32_t>(what + " type");
      if (type >= kMetaTypes) fail("{} has unknown value type {} ({})", what, type, valid_types());
      // Reserved above, so the key's storage (and the view indexing it) never moves.
      f_.metadata_.emplace_back(std::string(key), read_value(static_cast<MetaType>(type), 0, what));
      index.emplace(f_.metadata_.back().first, k);
    }
  }

  static std::string valid_types() {
    std::string s = "valid types are 0-12:";
    for (uint32_t t = 0; t < kMetaTypes; ++t) s += fmt::format(" {}={}", t, meta_type_name(static_cast<MetaType>(t)));
    return s;
  }

  MetaValue read_value(MetaType type, uint32_t depth, std::string_view what) {
    MetaValue v;
    v.type = type;
    switch (type) {
      case MetaType::U8: set_unsigned(v, read<uint8_t>(what)); break;
      case MetaType::U16: set_unsigned(v, read<uint16_t>(what)); break;
      case MetaType::U32: set_unsigned(v, read<uint32_t>(what)); break;
      case MetaType::U64: set_unsigned(v, read<uint64_t>(what)); break;
      case MetaType::I8: set_signed(v, read<int8_t>(what)); break;
      case MetaType::I16: set_signed(v, read<int16_t>(what)); break;
      case MetaType::I32: set_signed(v, read<int32_t>(what)); break;
      case MetaType::I64: set_signed(v, read<int64_t>(what)); break;
      case MetaType::F32: v.f = read<float>(what); break;
      case MetaType::F64: v.f = read<double>(what); break;
      case MetaType::BOOL: {
        uint8_t b = read<uint8_t>(what);
        if (b > 1) fail("{} is a bool of value {}, expected 0 or 1", what, b);
        v.u = b;
        v.i = b;
        break;
      }
      case MetaType::STRING: v.str = read_string(what); break;
      case MetaType::ARRAY: read_array(v, depth + 1, what); break;
    }
    return v;
  }

  static void set_unsigned(MetaValue& v, uint64_t x) {
    v.u = x;
    if (x <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) v.i = static_cast<int64_t>(x);
    v.f = static_cast<double>(x);
  }
  static void set_signed(MetaValue& v, int64_t x) {
    v.i = x;
    if (x >= 0) v.u = static_cast<uint64_t>(x);
    v.f = static_cast<double>(x);
  }

  void read_array(MetaValue& v, uint32_t depth, std::string_view what) {
    if (depth > lim_.max_array_depth)
      fail("{} nests arrays {} deep, more than the limit of {} (Limits::max_array_depth)", what, depth,
           lim_.max_array_depth);
    uint32_t elem = read<uint32_t>(fmt::format("{} array element type", what));
    if (elem >= kMetaTypes) fail("{} is an array of unknown value type {} ({})", what, elem, valid_types());
    v.elem = static_cast<MetaType>(elem);
    v.count = read<uint64_t>(fmt::format("{} array count", what));
    std::string count_what = fmt::format("{} array count", what);
    switch (v.elem) {
      case MetaType::STRING:
        check_count(v.count, 8, count_what);
        charge(v.count * sizeof(std::string_view), count_what);
        v.strings.reserve(v.count);
        for (uint64_t i = 0; i < v.count; ++i) v.strings.push_back(read_element_string(what, i));
        break;
      case MetaType::ARRAY:
        check_count(v.count, kMinArray, count_what);
        charge(v.count * sizeof(MetaValue), count_what);
        v.arrays.reserve(v.count);
        for (uint64_t i = 0; i < v.count; ++i)
          v.arrays.push_back(read_value(MetaType::ARRAY, depth, fmt::format("{} element {}", what, i)));
        break;
      default: {
        uint64_t size = meta_type_size(v.elem);
        check_count(v.count, size, count_what);
        v.raw = base_ + pos_;
        pos_ += v.count * size;
        if (v.elem == MetaType::BOOL)
          for (uint64_t i = 0; i < v.count; ++i)
            if (v.raw[i] > 1) fail("{} element {} is a bool of value {}, expected 0 or 1", what, i, v.raw[i]);
      }
    }
  }

  // Names the element only when something is wrong, so long vocabularies cost no formatting.
  std::string_view read_element_string(std::string_view what, uint64_t i) {
    if (left() < 8 || read_u64_at(pos_) > left() - 8) return read_string(fmt::format("{} element {}", what, i));
    return read_string(what);
  }

  uint64_t read_u64_at(uint64_t at) const {
    uint64_t x;
    std::memcpy(&x, base_ + at, 8);
    return x;
  }

  void read_alignment() {
    const MetaValue* a = f_.meta("general.alignment");
    if (!a) return;
    if (!a->is_int() || a->type == MetaType::BOOL)
      fail("metadata 'general.alignment' is {}, expected an unsigned integer", meta_type_name(a->type));
    bool negative = a->i < 0;  // only signed types set i below zero
    uint64_t x = a->u;
    if (negative || x == 0 || (x & (x - 1)) != 0 || x > (uint64_t{1} << 30))
      fail("metadata 'general.alignment' is {}, expected a power of two from 1 to 2^30",
           negative ? std::to_string(a->i) : std::to_string(x));
    f_.alignment_ = x;
  }

  void read_tensor_table() {
    check_count(n_tensors_, kMinTensorEntry, "tensor count");
    charge(n_tensors_ * (sizeof(TensorInfo) + kIndexNode), "tensor count");
    f_.tensors_.reserve(n_tensors_);
    auto& index = f_.index_->tensors;
    index.reserve(n_tensors_);
    for (uint64_t k = 0; k < n_tensors_; ++k) {
      std::string_view name = read_name(fmt::format("tensor #{} name", k));
      charge(name.size(), fmt::format("tensor name '{}'", printable(name)));
      if (auto it = index.find(name); it != index.end())
        fail("duplicate tensor name '{}' (tensors #{} and #{})", printable(name), it->second, k);
      std::string what = fmt::format("tensor '{}'", printable(name));
      TensorInfo t{std::string(name), Tensor{}, 0, 0};
      read_shape(t.view, what);
      uint32_t type = read<uint32_t>(what + " type");
      if (!dtype_is_known(type))
        fail("{} has type {} ({}), which is not supported; supported: F32, F16, BF16, Q8_0, Q4_0", what,
             type, ggml_type_name(type));
      t.view.dtype = static_cast<DType>(type);
      int64_t block = dtype_block_size(t.view.dtype);
      if (t.view.ne[0] % block != 0)
        fail("{} row length {} is not a multiple of the {} block size {}", what, t.view.ne[0],
             dtype_name(t.view.dtype), block);
      uint64_t row = 0;
      uint64_t blocks = static_cast<uint64_t>(t.view.ne[0] / block);
      uint64_t rows = static_cast<uint64_t>(t.view.rows());
      if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(dtype_block_bytes(t.view.dtype)), &row) ||
          __builtin_mul_overflow(row, rows, &t.bytes))
        fail("{} {} has a byte size that overflows 64 bits", what, tensor_shape_string(t.view));
      t.offset = read<uint64_t>(what + " offset");
      f_.tensors_.push_back(std::move(t));
      index.emplace(f_.tensors_.back().name, k);
    }
  }

  void read_shape(Tensor& view, const std::string& what) {
    uint32_t nd = read<uint32_t>(what + " dimension count");
    if (nd < 1 || nd > static_cast<uint32_t>(kMaxDims))
      fail("{} has {} dimensions, expected 1 to {}", what, nd, kMaxDims);
    view.ndim = static_cast<int32_t>(nd);
    int64_t elements = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      uint64_t n = read<uint64_t>(what + " dimensions");
      if (n == 0) fail("{} dimension {} is 0, expected at least 1", what, d);
      if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("{} dimension {} is {} (negative as a signed size)", what, d, static_cast<int64_t>(n));
      view.ne[d] = static_cast<int64_t>(n);
      if (__builtin_mul_overflow(elements, view.ne[d], &elements))
        fail("{} element count overflows 64 bits (dimension {} is {})", what, d, n);
    }
  }

  void place_tensors() {
    uint64_t a = f_.alignment_;
    uint64_t data = pos_ % a ? pos_ + (a - pos_ % a) : pos_;
    f_.data_offset_ = data;
    if (f_.tensors_.empty()) return;
    if (data > size_) fail("tensor data section starts at byte {}, past the end of the {}-byte file", data, size_);
    uint64_t room = size_ - data;
    for (TensorInfo& t : f_.tensors_) {
      if (t.offset % a != 0)
        fail("tensor '{}' offset {} is not a multiple of the alignment {}", printable(t.name), t.offset, a);
      if (t.offset > room || t.bytes > room - t.offset)
        fail("tensor '{}' data ({} bytes at offset {}) runs past the end of the file: the data section has {} bytes",
             printable(t.name), t.bytes, t.offset, room);
      finish_view(t, data);
    }
    std::vector<size_t> order(f_.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [&](size_t x, size_t y) { return f_.tensors_[x].offset < f_.tensors_[y].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const TensorInfo& p = f_.tensors_[order[k - 1]];
      const TensorInfo& q = f_.tensors_[order[k]];
      if (p.offset + p.bytes > q.offset)
        fail("tensors '{}' (bytes {} to {}) and '{}' (from byte {}) overlap in the data section",
             printable(p.name), p.offset, p.offset + p.bytes, printable(q.name), q.offset);
    }
  }

  void finish_view(TensorInfo& t, uint64_t data) {
    Tensor& v = t.view;
    v.nb[0] = dtype_block_bytes(v.dtype);
    v.nb[1] = v.row_bytes();
    for (int d = 2; d < kMaxDims; ++d) v.nb[d] = v.nb[d - 1] * v.ne[d - 1];
    // Views are mutable by type only; the mapping is read-only and the model is never written.
    v.host = const_cast<uint8_t*>(base_ + data + t.offset);
  }

  GgufFile& f_;
  const Limits& lim_;
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t used_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_meta_ = 0;
};

void GgufFile::build(const Limits& limits) {
  index_ = std::make_unique<Index>();
  Parser(*this, limits).run();
}

}  // namespace semline::gguf
