// GGUF images through the reader every model command uses (GgufFile::from_memory, the same
// parser as GgufFile::open), then everything a command may touch: every metadata value (arrays of
// arrays too), the first and last byte of every tensor's data, the hyper-parameters through the
// architecture template (`semline inspect`), and the tokenizer classes on the file's vocabulary
// (`semline tokenize`). A refusal must be one semline::Error; anything else escaping is a bug.
#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/host/plugin_host.h"
#include "core/model/gguf.h"
#include "fuzz_util.h"
#include "semline/error.h"
#include "tokenizers/bpe.h"
#include "tokenizers/spm.h"

using namespace semline;

namespace {

StageRegistry& registry() {
  static StageRegistry reg;
  return reg;
}

void walk(const MetaValue& v) {
  if (v.type == MetaType::STRING) fuzz::touch(v.str.data(), v.str.size());
  if (v.type != MetaType::ARRAY) return;
  switch (v.elem) {
    case MetaType::STRING:
      fuzz::expect(v.strings.size() == v.count, "string array holds another number of strings than its count");
      for (std::string_view s : v.strings) fuzz::touch(s.data(), s.size());
      break;
    case MetaType::ARRAY:
      fuzz::expect(v.arrays.size() == v.count, "array of arrays holds another number of arrays than its count");
      for (const MetaValue& a : v.arrays) walk(a);
      break;
    default:
      fuzz::expect(v.count == 0 || v.raw != nullptr, "numeric array without elements");
      for (uint64_t i = 0; i < v.count; ++i) (void)v.at<double>(i);
  }
}

void check_tensors(const gguf::GgufFile& f) {
  std::span<const uint8_t> file = f.bytes();
  std::vector<const gguf::TensorInfo*> by_offset;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const auto* p = static_cast<const uint8_t*>(t.view.host);
    fuzz::expect(p >= file.data() + f.data_offset() && t.bytes <= static_cast<uint64_t>(file.data() + file.size() - p),
                 "tensor data outside the file's data section");
    fuzz::expect(t.view.contiguous(), "tensor view is not contiguous");
    fuzz::expect(f.weight(t.name) == &t.view, "tensor is not found by its name");
    fuzz::touch(p, t.bytes);
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k)
    fuzz::expect(by_offset[k - 1]->offset + by_offset[k - 1]->bytes <= by_offset[k]->offset, "tensor data overlaps");
}

// What `semline inspect` prints of the hyper-parameters.
void read_hparams(const gguf::GgufFile& f) {
  auto arch = f.find_string("general.architecture");
  if (!arch) return;
  if (const RegisteredArch* a = registry().find_arch(*arch)) (void)a->entry.read_hparams(f);
}

template <class T>
void tokenize(const gguf::GgufFile& f) {
  T tok(f, {});
  std::vector<int32_t> ids = tok.encode("Hello, world! \xF0\x9F\x99\x82 \x80 </s>", true, true);
  for (int32_t id : ids) fuzz::expect(id >= 0 && id < tok.n_vocab(), "encode gave an id outside the vocabulary");
  (void)tok.decode(ids);
  for (int32_t id = 0; id < tok.n_vocab(); ++id) (void)tok.token_bytes(id);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_logs();
  PluginHost(registry()).load_all({SEMLINE_PLUGIN_DIR});
  fuzz::expect(registry().find_arch("llama") != nullptr, "the archs plugin did not load from " SEMLINE_PLUGIN_DIR);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<gguf::GgufFile> f;
  try {
    f = gguf::GgufFile::from_memory({data, size}, "fuzz.gguf");
  } catch (const Error&) {
    return 0;
  }
  for (const auto& [key, value] : f->metadata()) {
    fuzz::expect(f->meta(key) == &value, "metadata key is not found by its name");
    walk(value);
  }
  check_tensors(*f);
  try {
    read_hparams(*f);
  } catch (const Error&) {
  }
  try {
    auto model = f->find_string("tokenizer.ggml.model");
    if (model == "llama") tokenize<tokenizers::SpmTokenizer>(*f);
    if (model == "gpt2") tokenize<tokenizers::BpeTokenizer>(*f);
  } catch (const Error&) {
  }
  return 0;
}
