// Arbitrary bytes (malformed UTF-8 included) through the SentencePiece tokenizer with two real
// vocabularies: llama's 32000 pieces and stories260K's 512. Text without a literal U+2581 '▁'
// must round-trip (the tokenizer writes spaces as '▁', so a '▁' in the text reads back as a space).
#include <memory>
#include <string_view>

#include "core/model/gguf.h"
#include "fuzz_util.h"
#include "tokenizer_checks.h"
#include "tokenizers/spm.h"

using namespace semline;

namespace {

struct Vocabulary {
  std::unique_ptr<gguf::GgufFile> file;
  std::unique_ptr<tokenizers::SpmTokenizer> tok;
  explicit Vocabulary(const char* relative)
      : file(gguf::GgufFile::open(fuzz::model_path(relative))), tok(new tokenizers::SpmTokenizer(*file, {})) {}
};

const Vocabulary& llama() {
  static Vocabulary v("vocab/ggml-vocab-llama-spm.gguf");
  return v;
}
const Vocabulary& stories() {
  static Vocabulary v("gguf/stories260K.gguf");
  return v;
}

}  // namespace

SEMLINE_FUZZ_INITIALIZE((void)llama(), (void)stories())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  bool round_trips = text.find("\xE2\x96\x81") == std::string_view::npos;
  for (const Vocabulary* v : {&llama(), &stories()}) {
    fuzz::check_text(*v->tok, text, true, round_trips, text);
    fuzz::check_ids(*v->tok, data, size, true);
  }
  return 0;
}
