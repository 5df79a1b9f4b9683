#include "core/model/model_file.h"

#include <spdlog/fmt/fmt.h>

#include "core/model/gguf.h"
#include "core/model/hf_model.h"
#include "core/util/text.h"
#include "semline/error.h"

namespace semline {

namespace {

[[noreturn]] void wrong_type(const std::string& file, std::string_view key, const MetaValue& v,
                             std::string_view expected) {
  throw Error(fmt::format("{}: metadata '{}' is {}, expected {}", file, key, meta_type_name(v.type), expected));
}

}  // namespace

const MetaValue& ModelFile::require(std::string_view key) const {
  if (const MetaValue* v = meta(key)) return *v;
  std::vector<std::string> keys;
  keys.reserve(metadata().size());
  for (const auto& kv : metadata()) keys.push_back(kv.first);
  throw Error(fmt::format("{}: metadata key '{}' is missing{}", path(), key, did_you_mean(key, keys)));
}

std::optional<uint64_t> ModelFile::find_u64(std::string_view key) const {
  const MetaValue* v = meta(key);
  if (!v) return std::nullopt;
  if (!v->is_int()) wrong_type(path(), key, *v, "an unsigned integer");
  if (v->i < 0) throw Error(fmt::format("{}: metadata '{}' is {}, expected a value >= 0", path(), key, v->i));
  return v->u;
}

std::optional<int64_t> ModelFile::find_i64(std::string_view key) const {
  const MetaValue* v = meta(key);
  if (!v) return std::nullopt;
  if (!v->is_int()) wrong_type(path(), key, *v, "an integer");
  if (v->type == MetaType::U64 && v->u > static_cast<uint64_t>(INT64_MAX))
    throw Error(fmt::format("{}: metadata '{}' is {}, more than a signed 64-bit integer holds", path(), key, v->u));
  return v->i;
}

std::optional<double> ModelFile::find_f64(std::string_view key) const {
  const MetaValue* v = meta(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(path(), key, *v, "a number");
  return v->f;
}

std::optional<std::string_view> ModelFile::find_string(std::string_view key) const {
  const MetaValue* v = meta(key);
  if (!v) return std::nullopt;
  if (v->type != MetaType::STRING) wrong_type(path(), key, *v, "a string");
  return v->str;
}

std::optional<bool> ModelFile::find_bool(std::string_view key) const {
  const MetaValue* v = meta(key);
  if (!v) return std::nullopt;
  if (v->type != MetaType::BOOL) wrong_type(path(), key, *v, "a bool");
  return v->u != 0;
}

uint64_t ModelFile::get_u64(std::string_view key) const {
  require(key);
  return *find_u64(key);
}
int64_t ModelFile::get_i64(std::string_view key) const {
  require(key);
  return *find_i64(key);
}
double ModelFile::get_f64(std::string_view key) const {
  require(key);
  return *find_f64(key);
}
std::string_view ModelFile::get_string(std::string_view key) const {
  require(key);
  return *find_string(key);
}
bool ModelFile::get_bool(std::string_view key) const {
  require(key);
  return *find_bool(key);
}

std::unique_ptr<ModelFile> open_model_file(const std::filesystem::path& path) {
  if (hf::is_hf_path(path)) return hf::open_folder(path);
  return gguf::GgufFile::open(path);
}

void write_gguf(const ModelFile& model, const std::filesystem::path& out, const gguf::Progress& progress) {
  gguf::GgufWriter w;
  for (const auto& [key, value] : model.metadata()) w.add_meta(key, value);
  for (const TensorInfo& t : model.tensors()) {
    const Tensor& v = t.view;
    w.add_tensor(t.name, v.dtype, std::vector<int64_t>(v.ne, v.ne + v.ndim),
                 std::span<const uint8_t>(static_cast<const uint8_t*>(v.host), t.bytes));
  }
  w.write(out, progress);
}

}  // namespace semline
