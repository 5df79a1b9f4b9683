// Hugging Face GPT-2 folders through what every command runs on one (`semline inspect DIR`,
// `run`, `convert DIR -o OUT`): hf::open_folder, which reads config.json, vocab.json, merges.txt
// and model.safetensors, then everything a command may touch: every metadata value, the first and
// last byte of every tensor, the char tokenizer on a char vocabulary, and the conversion to GGUF,
// which must read back with the same tensors. A refusal must be one semline::Error.
//
// Input: three u32 (little-endian) byte counts c, v, m; c bytes of config.json, v of vocab.json,
// m of merges.txt, the rest model.safetensors. A count of 0 leaves that file out (an empty
// config.json cannot be valid anyway). The loader takes a folder, so the files are written to a
// private one, removed at exit.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/model/gguf.h"
#include "core/model/hf_model.h"
#include "fuzz_util.h"
#include "semline/error.h"
#include "tokenizers/char_tokenizer.h"

using namespace semline;

namespace {

const std::filesystem::path& dir() {
  static const std::filesystem::path d = [] {
    auto p = std::filesystem::temp_directory_path() / ("semline-fuzz-safetensors-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p / "model");
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir(), ec);
    });
    return p;
  }();
  return d;
}

void put(const char* name, const uint8_t* p, size_t n, bool keep_empty) {
  const auto path = dir() / "model" / name;
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (n == 0 && !keep_empty) return;
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n));
  if (!f) fuzz::broken("cannot write the scratch folder");
}

void walk(const MetaValue& v) {
  if (v.type == MetaType::STRING) fuzz::touch(v.str.data(), v.str.size());
  if (v.type != MetaType::ARRAY) return;
  if (v.elem == MetaType::STRING) {
    fuzz::expect(v.strings.size() == v.count, "string array holds another number of strings than its count");
    for (std::string_view s : v.strings) fuzz::touch(s.data(), s.size());
  } else {
    for (uint64_t i = 0; i < v.count; ++i) (void)v.at<double>(i);
  }
}

}  // namespace

SEMLINE_FUZZ_INITIALIZE((void)dir())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 12) return 0;
  uint32_t len[3];
  std::memcpy(len, data, 12);
  size_t at = 12;
  const char* names[3] = {"config.json", "vocab.json", "merges.txt"};
  for (int i = 0; i < 3; ++i) {
    const size_t n = std::min<size_t>(len[i], size - at);
    put(names[i], data + at, n, false);
    at += n;
  }
  put("model.safetensors", data + at, size - at, true);

  std::unique_ptr<ModelFile> m;
  try {
    m = hf::open_folder(dir() / "model");
  } catch (const Error&) {
    return 0;
  }
  for (const auto& [key, v] : m->metadata()) {
    fuzz::expect(m->meta(key) == &v, "a metadata key is not found by its name");
    walk(v);
  }
  for (const TensorInfo& t : m->tensors()) {
    fuzz::expect(t.view.contiguous(), "tensor view is not contiguous");
    fuzz::expect(m->weight(t.name) == &t.view, "tensor is not found by its name");
    fuzz::expect(static_cast<uint64_t>(t.view.elements() * dtype_block_bytes(t.view.dtype)) == t.bytes,
                 "tensor bytes do not match its shape");
    fuzz::touch(t.view.host, t.bytes);
  }
  if (m->find_string("tokenizer.ggml.model") == std::string_view("char")) {
    try {
      tokenizers::CharTokenizer tok(*m, {});
      // The input's own config.json bytes as a text: any byte string must encode or be refused.
      const std::string_view text(reinterpret_cast<const char*>(data + 12), std::min<size_t>(len[0], size - 12));
      const std::vector<int32_t> ids = tok.encode(text, false, false);
      (void)tok.decode(ids);
    } catch (const Error&) {
    }
  }
  try {
    const auto out = dir() / "converted.gguf";
    write_gguf(*m, out);
    auto g = gguf::GgufFile::open(out);
    fuzz::expect(g->tensors().size() == m->tensors().size(), "the converted model lacks tensors");
  } catch (const Error&) {
  }
  return 0;
}
