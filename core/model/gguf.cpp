#include "core/model/gguf.h"

#include <spdlog/fmt/fmt.h>

#include "core/model/gguf_index.h"
#include "core/model/mapped_file.h"
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

std::string GgufFile::format() const {
  return fmt::format("GGUF v{}, {} bytes, alignment {}", version_, bytes_.size(), alignment_);
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
