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

TEST_CASE("the end-of-generation set: EOS and the vocabulary's end-of-turn tokens, as llama.cpp's", "[tokenizers]") {
  CHECK(llama_spm().is_eog(2));  // </s>
  CHECK_FALSE(llama_spm().is_eog(1));
  CHECK_FALSE(llama_spm().is_eog(15043));
  CHECK(gpt2().is_eog(50256));  // <|endoftext|>
  CHECK_FALSE(gpt2().is_eog(995));
  // Phi-3: EOS </s>, and <|end|> and <|endoftext|> end a turn too; <|assistant|> does not.
  const tokenizers::SpmTokenizer phi3_tok(model_file("vocab/ggml-vocab-phi-3.gguf"), {});
  const Tokenizer* phi3 = &phi3_tok;
  for (const char* piece : {"</s>", "<|end|>", "<|endoftext|>"}) {
    INFO(piece);
    const auto ids = phi3->encode(piece, false, true);
    REQUIRE(ids.size() == 1);
    CHECK(phi3->is_eog(ids[0]));
  }
  const auto assistant = phi3->encode("<|assistant|>", false, true);
  REQUIRE(assistant.size() == 1);
  CHECK_FALSE(phi3->is_eog(assistant[0]));
}

}  // namespace semline::test
