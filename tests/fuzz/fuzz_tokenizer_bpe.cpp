// Arbitrary bytes (malformed UTF-8 included) through the GPT-2 byte-level BPE tokenizer with
// GPT-2's vocabulary. Every byte string must round-trip: decode is encode's exact inverse.
#include <memory>
#include <string_view>

#include "core/model/gguf.h"
#include "fuzz_util.h"
#include "tokenizer_checks.h"
#include "tokenizers/bpe.h"

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
  fuzz::check_text(gpt2(), text, false, true);
  fuzz::check_ids(gpt2(), data, size, false);
  return 0;
}
