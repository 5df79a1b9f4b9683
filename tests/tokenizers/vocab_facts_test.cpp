// Facts of the shipped vocabularies: sizes, special ids, pieces and the bytes they stand for.
#include <catch2/catch.hpp>

#include <vector>

#include "tokenizer_test_util.h"

namespace semline::test {

TEST_CASE("vocabulary facts of the model files", "[tokenizers]") {
  CHECK(llama_spm().n_vocab() == 32000);
  CHECK(llama_spm().bos() == 1);
  CHECK(llama_spm().eos() == 2);
  CHECK(llama_spm().piece(15043) == "\xE2\x96\x81Hello");
  CHECK(llama_spm().token_bytes(15043) == " Hello");
  CHECK(llama_spm().token_bytes(13) == "\n");  // <0x0A>
  CHECK(llama_spm().token_bytes(1).empty());   // <s>, a control token
  CHECK(llama_spm().token_bytes(0) == "\xEF\xBF\xBD");  // <unk>

  CHECK(stories260k().n_vocab() == 512);

  CHECK(gpt2().n_vocab() == 50257);
  CHECK(gpt2().bos() == 50256);
  CHECK(gpt2().eos() == 50256);
  CHECK(gpt2().piece(995) == "\xC4\xA0world");  // "Ġworld"
  CHECK(gpt2().token_bytes(995) == " world");
  CHECK(gpt2().token_bytes(50256).empty());     // <|endoftext|>, a control token
  CHECK(gpt2().decode(std::vector<int32_t>{15496, 995, 50256}) == "Hello world");
}

}  // namespace semline::test
