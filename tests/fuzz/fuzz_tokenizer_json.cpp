// Hugging Face tokenizer.json through what a folder's loader runs on it: hf::read_tokenizer_json
// turns it into tokenizer.ggml.* metadata (or refuses it with one semline::Error), and a vocabulary
// it accepts must build its tokenizer (or be refused by it) and encode any text to ids inside the
// vocabulary (or refuse a byte it cannot spell) and decode them.
//
// Input: a u16 (little-endian) vocabulary size (the model's rows, 1..4096), then the bytes of
// tokenizer.json; the text encoded is the input itself. The reader takes a folder, so the file is
// written to a private one, removed at exit.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "core/model/hf_tokenizer.h"
#include "fuzz_util.h"
#include "semline/error.h"
#include "tokenizers/bpe.h"
#include "tokenizers/spm.h"

using namespace semline;

namespace {

const std::filesystem::path& dir() {
  static const std::filesystem::path d = [] {
    auto p = std::filesystem::temp_directory_path() / ("semline-fuzz-tokenizer-json-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir(), ec);
    });
    return p;
  }();
  return d;
}

// The metadata the reader wrote, as a model.
class Vocabulary final : public ModelView {
 public:
  const MetaValue* meta(std::string_view key) const override {
    for (const auto& [k, v] : owned.entries)
      if (k == key) return &v;
    return nullptr;
  }
  const Tensor* weight(std::string_view) const override { return nullptr; }
  std::string path() const override { return (dir() / "tokenizer.json").string(); }
  std::vector<std::string_view> meta_keys() const override {
    std::vector<std::string_view> keys;
    for (const auto& kv : owned.entries) keys.push_back(kv.first);
    return keys;
  }
  std::vector<std::string_view> weight_names() const override { return {}; }
  OwnedMeta owned;
};

}  // namespace

SEMLINE_FUZZ_INITIALIZE((void)dir())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint16_t rows;
  std::memcpy(&rows, data, 2);
  const int64_t n_vocab = 1 + rows % 4096;
  {
    std::ofstream f(dir() / "tokenizer.json", std::ios::binary);
    f.write(reinterpret_cast<const char*>(data + 2), static_cast<std::streamsize>(size - 2));
    if (!f) fuzz::broken("cannot write the scratch folder");
  }
  Vocabulary v;
  try {
    hf::read_tokenizer_json({dir(), n_vocab, std::nullopt, std::nullopt}, v.owned);
  } catch (const Error&) {
    return 0;
  }
  const MetaValue* tokens = v.meta("tokenizer.ggml.tokens");
  fuzz::expect(tokens && tokens->count == static_cast<uint64_t>(n_vocab), "the vocabulary is not the model's size");
  for (std::string_view s : tokens->strings) fuzz::touch(s.data(), s.size());
  const std::string_view model = v.meta("tokenizer.ggml.model")->str;
  std::unique_ptr<Tokenizer> tok;
  try {
    if (model == "llama") tok = std::make_unique<tokenizers::SpmTokenizer>(v, LogFn{});
    else tok = std::make_unique<tokenizers::BpeTokenizer>(v, LogFn{});
  } catch (const Error&) {
    return 0;
  }
  const std::string_view text(reinterpret_cast<const char*>(data + 2), std::min<size_t>(size - 2, 256));
  for (bool special : {false, true}) {
    std::vector<int32_t> ids;
    try {
      ids = tok->encode(text, true, special);
    } catch (const Error&) {  // a byte the vocabulary cannot spell
      continue;
    }
    for (int32_t id : ids) fuzz::expect(id >= 0 && id < n_vocab, "an id outside the vocabulary");
    (void)tok->decode(ids);
  }
  return 0;
}
