#include "core/model/gguf.h"

#include <spdlog/fmt/fmt.h>

#include "core/model/gguf_index.h"
#include "core/model/mapped_file.h"
#include "core/util/text.h"
#include "semline/error.h"

namespace semline::gguf {

GgufFile::GgufFile() = default;
GgufFile::~GgufFile() = default;

std::unique_ptr<GgufFile> GgufFile::open(const std::filesystem::path& path, const Limits& limits) {
  auto map = std::make_shared<MappedFile>(path);
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = path.string();
  f->bytes_ = map->bytes();
  f->owner_ = std::move(map);
  f->build(limits);
  return f;
}

std::unique_ptr<GgufFile> GgufFile::from_memory(std::span<const uint8_t> bytes, std::string name,
                                                const Limits& limits) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = std::move(name);
  f->bytes_ = bytes;
  f->build(limits);
  return f;
}

const MetaValue* GgufFile::meta(std::string_view key) const {
  auto it = index_->meta.find(key);
  return it == index_->meta.end() ? nullptr : &metadata_[it->second].second;
}

const TensorInfo* GgufFile::tensor_info(std::string_view name) const {
  auto it = index_->tensors.find(name);
  return it == index_->tensors.end() ? nullptr : &tensors_[it->second];
}

const Tensor* GgufFile::weight(std::string_view name) const {
  const TensorInfo* t = tensor_info(name);
  return t ? &t->view : nullptr;
}

const MetaValue& GgufFile::require(std::string_view key) const {
  if (const MetaValue* v = meta(key)) return *v;
  std::vector<std::string> keys;
  keys.reserve(metadata_.size());
  for (const auto& kv : metadata_) keys.push_back(kv.first);
  throw Error(fmt::format("{}: metadata key '{}' is missing{}", name_, key, did_you_mean(key, keys)));
}

namespace {

[[noreturn]] void wrong_type(const std::string& file, std::string_view key, const MetaValue& v,
                             std::string_view expected) {
  throw Error(fmt::format("{}: metadata '{}' is {}, expected {}", file, key, meta_type_name(v.type), expected));
}

}  // namespace

std::optional<uint64_t> GgufFile::find_u64(std::string_view key) const {
  const MetaValue* v = meta(key);
  if (!v) return std::nullopt;
  if (!v->is_int()) wrong_type(name_, key, *v, "an unsigned integer");
  if (v->i < 0) throw Error(fmt::format("{}: metadata '{}' is {}, expected a value >= 0", name_, key, v->i));
  return v->u;
}

std::optional<int64_t> GgufFile::find_i64(std::string_view key) const {
  const MetaValue* v = meta(key);
  if (!v) return std::nullopt;
  if (!v->is_int()) wrong_type(name_, key, *v, "an integer");
  if (v->type == MetaType::U64 && v->u > static_cast<uint64_t>(INT64_MAX))
    throw Error(fmt::format("{}: metadata '{}' is {}, more than a signed 64-bit integer holds", name_, key, v->u));
  return v->i;
}

std::optional<double> GgufFile::find_f64(std::string_view key) const {
  const MetaValue* v = meta(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(name_, key, *v, "a number");
  return v->f;
}

std::optional<std::string_view> GgufFile::find_string(std::string_view key) const {
  const MetaValue* v = meta(key);
  if (!v) return std::nullopt;
  if (v->type != MetaType::STRING) wrong_type(name_, key, *v, "a string");
  return v->str;
}

std::optional<bool> GgufFile::find_bool(std::string_view key) const {
  const MetaValue* v = meta(key);
  if (!v) return std::nullopt;
  if (v->type != MetaType::BOOL) wrong_type(name_, key, *v, "a bool");
  return v->u != 0;
}

uint64_t GgufFile::get_u64(std::string_view key) const {
  require(key);
  return *find_u64(key);
}
int64_t GgufFile::get_i64(std::string_view key) const {
  require(key);
  return *find_i64(key);
}
double GgufFile::get_f64(std::string_view key) const {
  require(key);
  return *find_f64(key);
}
std::string_view GgufFile::get_string(std::string_view key) const {
  require(key);
  return *find_string(key);
}
bool GgufFile::get_bool(std::string_view key) const {
  require(key);
  return *find_bool(key);
}

std::string ggml_type_name(uint32_t id) {
  // GGUF's tensor type ids, so that a refused file says which format it holds.
  static const char* const names[] = {
      "F32",  "F16",  "Q4_0",    "Q4_1",   "Q4_2 (removed)", "Q4_3 (removed)", "Q5_0",  "Q5_1",
      "Q8_0", "Q8_1", "Q2_K",    "Q3_K",   "Q4_K",           "Q5_K",           "Q6_K",  "Q8_K",
      "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",     "IQ3_S",          "IQ2_S", "IQ4_XS",
      "I8",   "I16",  "I32",     "I64",    "F64",            "IQ1_M",          "BF16"};
  if (id < std::size(names)) return names[id];
  return "unknown";
}

}  // namespace semline::gguf
