// A ModelView over metadata set by hand, for vocabularies built in a test and for broken ones.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "semline/model.h"

namespace semline::test {

class FakeModel : public ModelView {
 public:
  explicit FakeModel(std::string path = "fake.gguf") : path_(std::move(path)) {}
  // Values view strings owned here; moving keeps them in place, copying would not.
  FakeModel(FakeModel&&) = default;
  FakeModel& operator=(FakeModel&&) = default;
  FakeModel(const FakeModel&) = delete;
  FakeModel& operator=(const FakeModel&) = delete;

  const MetaValue* meta(std::string_view key) const override {
    auto it = meta_.find(key);
    return it == meta_.end() ? nullptr : &it->second;
  }
  const Tensor* weight(std::string_view) const override { return nullptr; }
  std::string path() const override { return path_; }
  std::vector<std::string_view> meta_keys() const override {
    std::vector<std::string_view> keys;
    for (const auto& kv : meta_) keys.push_back(kv.first);
    return keys;
  }
  std::vector<std::string_view> weight_names() const override { return {}; }

  void erase(std::string_view key) { meta_.erase(std::string(key)); }
  void set_string(std::string_view key, std::string_view value) {
    MetaValue v;
    v.type = MetaType::STRING;
    v.str = keep(value);
    put(key, v);
  }
  void set_bool(std::string_view key, bool value) { put(key, scalar(MetaType::BOOL, value)); }
  void set_u32(std::string_view key, uint32_t value) { put(key, scalar(MetaType::U32, value)); }
  void set_i32(std::string_view key, int32_t value) {
    MetaValue v = scalar(MetaType::I32, 0);
    v.i = value;
    v.f = value;
    v.u = static_cast<uint64_t>(value);
    put(key, v);
  }
  void set_strings(std::string_view key, const std::vector<std::string>& values) {
    MetaValue v;
    v.type = MetaType::ARRAY;
    v.elem = MetaType::STRING;
    v.count = values.size();
    for (const auto& s : values) v.strings.push_back(keep(s));
    put(key, v);
  }
  template <class T>
  void set_numbers(std::string_view key, MetaType elem, const std::vector<T>& values) {
    MetaValue v;
    v.type = MetaType::ARRAY;
    v.elem = elem;
    v.count = values.size();
    auto& blob = blobs_.emplace_back(values.size() * sizeof(T));
    if (!values.empty()) std::memcpy(blob.data(), values.data(), blob.size());
    v.raw = blob.data();
    put(key, v);
  }

 private:
  static MetaValue scalar(MetaType t, uint64_t u) {
    MetaValue v;
    v.type = t;
    v.u = u;
    v.i = static_cast<int64_t>(u);
    v.f = static_cast<double>(u);
    return v;
  }
  std::string_view keep(std::string_view s) { return strings_.emplace_back(s); }
  void put(std::string_view key, MetaValue v) { meta_.insert_or_assign(std::string(key), std::move(v)); }

  std::string path_;
  std::map<std::string, MetaValue, std::less<>> meta_;
  std::deque<std::string> strings_;  // a deque keeps the views valid as it grows
  std::deque<std::vector<unsigned char>> blobs_;
};

// A SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then `pieces` with `scores`.
struct SpmPiece {
  std::string text;
  float score;
};
inline FakeModel make_spm_vocab(const std::vector<SpmPiece>& pieces, bool byte_tokens = true) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  if (byte_tokens) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      tokens.push_back(name);
      scores.push_back(0);
      types.push_back(6);
    }
  }
  for (const auto& p : pieces) {
    tokens.push_back(p.text);
    scores.push_back(p.score);
    types.push_back(1);
  }
  FakeModel m("spm-test.gguf");
  m.set_string("tokenizer.ggml.model", "llama");
  m.set_strings("tokenizer.ggml.tokens", tokens);
  m.set_numbers("tokenizer.ggml.scores", MetaType::F32, scores);
  m.set_numbers("tokenizer.ggml.token_type", MetaType::I32, types);
  m.set_u32("tokenizer.ggml.bos_token_id", 1);
  m.set_u32("tokenizer.ggml.eos_token_id", 2);
  m.set_u32("tokenizer.ggml.unknown_token_id", 0);
  return m;
}

}  // namespace semline::test
