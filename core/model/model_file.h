// An open model, whatever the file format: metadata in GGUF terms and the tensor table, both in
// file order, with typed metadata access. GGUF files are read as they are; a Hugging Face folder
// (config.json, safetensors, tokenizer.json) is presented in the same terms (core/model/hf_model.h),
// so the commands, the graph and the stages see one kind of model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model/gguf_writer.h"
#include "semline/model.h"
#include "semline/tensor.h"

namespace semline {

struct TensorInfo {
  std::string name;
  Tensor view;      // host view, contiguous strides
  uint64_t offset;  // of the stored bytes, from the start of the file's data section
  uint64_t bytes;
};

class ModelFile : public ModelView {
 public:
  virtual const std::vector<std::pair<std::string, MetaValue>>& metadata() const = 0;  // file order
  virtual const std::vector<TensorInfo>& tensors() const = 0;                          // file order
  virtual const TensorInfo* tensor_info(std::string_view name) const = 0;              // null when absent
  // One line on what was read, e.g. "GGUF v3, 1185376 bytes, alignment 32".
  virtual std::string format() const = 0;

  const Tensor* weight(std::string_view name) const override {
    const TensorInfo* t = tensor_info(name);
    return t ? &t->view : nullptr;
  }
  std::vector<std::string_view> meta_keys() const override {
    std::vector<std::string_view> keys;
    for (const auto& kv : metadata()) keys.push_back(kv.first);
    return keys;
  }
  std::vector<std::string_view> weight_names() const override {
    std::vector<std::string_view> names;
    for (const TensorInfo& t : tensors()) names.push_back(t.name);
    return names;
  }

  // Typed metadata access. get_* throw when the key is missing or holds another type; find_*
  // return nullopt when the key is missing and throw on another type.
  uint64_t get_u64(std::string_view key) const;  // any integer type, refuses negative values
  int64_t get_i64(std::string_view key) const;   // any integer type that fits
  double get_f64(std::string_view key) const;    // any number
  std::string_view get_string(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::optional<uint64_t> find_u64(std::string_view key) const;
  std::optional<int64_t> find_i64(std::string_view key) const;
  std::optional<double> find_f64(std::string_view key) const;
  std::optional<std::string_view> find_string(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;

 private:
  const MetaValue& require(std::string_view key) const;
};

// Opens the model a path names: a folder, or a config.json, is a Hugging Face folder;
// anything else is read as GGUF. Errors name the file and what is wrong with it.
std::unique_ptr<ModelFile> open_model_file(const std::filesystem::path& path);

// Writes a model's metadata and tensors, as they are, as a GGUF file.
void write_gguf(const ModelFile& model, const std::filesystem::path& out, const gguf::Progress& progress = {});

}  // namespace semline
