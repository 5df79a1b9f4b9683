// Metadata a converted model owns (a Hugging Face folder read in GGUF terms): each MetaValue views
// strings and arrays kept here. Deques, so that adding a value never moves what earlier values
// point to.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "semline/model.h"

namespace semline {

class OwnedMeta {
 public:
  void add_string(std::string key, std::string value) {
    MetaValue v;
    v.type = MetaType::STRING;
    v.str = strings_.emplace_back(std::move(value));
    entries.emplace_back(std::move(key), std::move(v));
  }
  void add_u32(std::string key, uint64_t value) {
    MetaValue v;
    v.type = MetaType::U32;
    v.u = value;
    v.i = static_cast<int64_t>(value);
    v.f = static_cast<double>(value);
    entries.emplace_back(std::move(key), std::move(v));
  }
  void add_f32(std::string key, double value) {
    MetaValue v;
    v.type = MetaType::F32;
    v.f = static_cast<float>(value);
    entries.emplace_back(std::move(key), std::move(v));
  }
  void add_bool(std::string key, bool value) {
    MetaValue v;
    v.type = MetaType::BOOL;
    v.u = value ? 1 : 0;
    v.i = static_cast<int64_t>(v.u);
    entries.emplace_back(std::move(key), std::move(v));
  }
  void add_strings(std::string key, std::vector<std::string> values) {
    const std::vector<std::string>& kept = string_arrays_.emplace_back(std::move(values));
    MetaValue v;
    v.type = MetaType::ARRAY;
    v.elem = MetaType::STRING;
    v.count = kept.size();
    v.strings.assign(kept.begin(), kept.end());
    entries.emplace_back(std::move(key), std::move(v));
  }
  void add_i32s(std::string key, std::vector<int32_t> values) {
    const std::vector<int32_t>& kept = int_arrays_.emplace_back(std::move(values));
    add_array(std::move(key), MetaType::I32, kept.size(), kept.data());
  }
  void add_f32s(std::string key, std::vector<float> values) {
    const std::vector<float>& kept = float_arrays_.emplace_back(std::move(values));
    add_array(std::move(key), MetaType::F32, kept.size(), kept.data());
  }

  std::vector<std::pair<std::string, MetaValue>> entries;

 private:
  void add_array(std::string key, MetaType elem, size_t count, const void* data) {
    MetaValue v;
    v.type = MetaType::ARRAY;
    v.elem = elem;
    v.count = count;
    v.raw = static_cast<const unsigned char*>(data);
    entries.emplace_back(std::move(key), std::move(v));
  }

  std::deque<std::string> strings_;
  std::deque<std::vector<std::string>> string_arrays_;
  std::deque<std::vector<int32_t>> int_arrays_;
  std::deque<std::vector<float>> float_arrays_;
};

}  // namespace semline
