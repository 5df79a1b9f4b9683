// Arbitrary bytes (malformed UTF-8 included) through the GPT-2 byte-level BPE tokenizer with
// GPT-2's vocabulary. Every byte string must round-trip as the tokenizer reads it (malformed
// UTF-8 as llama.cpp reads it: utf8_lenient), and every pre-tokenizer cuts it into words that
// tile it.
#include <memory>
#include <string_view>

#include "core/model/gguf.h"
#include "fuzz_util.h"
#include "tokenizer_checks.h"
#include "tokenizers/bpe.h"
#include "tokenizers/pre_tokenizer.h"
#include "tokenizers/utf8.h"

using namespace semline;

namespace {

const Tokenizer& gpt2() {
  static std::unique_ptr<gguf::GgufFile> file = gguf::GgufFile::open(fuzz::model_path("vocab/ggml-vocab-gpt-2.gguf"));
  static tokenizers::BpeTokenizer tok(*file, {});
  return tok;
}

}  // namespace

SEMLINE_FUZZ_INITIALIZE((void)gpt2())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  fuzz::check_text(gpt2(), text, false, true, tokenizers::utf8_lenient(text));
  fuzz::check_ids(gpt2(), data, size, false);
  // Every pre-tokenizer's words tile the text: each byte in exactly one word, none empty.
  for (const char* name : {"gpt-2", "starcoder", "falcon", "default", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder"}) {
    size_t at = 0;
    for (tokenizers::Span w : tokenizers::PreTokenizer::named(name)->split(text)) {
      fuzz::expect(w.off == at && w.len > 0, "a pre-tokenizer's words do not tile the text");
      at += w.len;
    }
    fuzz::expect(at == text.size(), "a pre-tokenizer's words do not cover the text");
  }
  return 0;
}
