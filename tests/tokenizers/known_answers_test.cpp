// Encoding matches llama.cpp id for id, and decoding gives the text back.
#include <catch2/catch.hpp>

#include <vector>

#include "known_answers.h"
#include "tokenizer_test_util.h"

namespace semline::test {

namespace {

// U+2581 in the input reads as a space to SentencePiece, so such text cannot come back unchanged.
bool has_space_mark(std::string_view s) { return s.find("\xE2\x96\x81") != std::string_view::npos; }

void check_answers(const Tokenizer& tok, std::span<const KnownAnswer> answers, bool starts_with_bos, bool spm) {
  REQUIRE(answers.size() > 20);
  for (const KnownAnswer& a : answers) {
    INFO("text: \"" << shown(a.text) << "\"");
    std::vector<int32_t> ids = tok.encode(a.text, true);
    CHECK(ids == a.ids);

    std::vector<int32_t> without = a.ids;
    if (starts_with_bos) {
      REQUIRE(!without.empty());
      REQUIRE(without.front() == tok.bos());
      without.erase(without.begin());
    }
    CHECK(tok.encode(a.text, false) == without);

    if (!(spm && has_space_mark(a.text))) CHECK(tok.decode(a.ids) == a.text);
  }
}

}  // namespace

TEST_CASE("spm encodes like llama.cpp on the llama vocabulary", "[tokenizers][spm]") {
  check_answers(llama_spm(), llama_spm_answers(), true, true);
}

TEST_CASE("spm encodes like llama.cpp on the stories260K vocabulary", "[tokenizers][spm]") {
  check_answers(stories260k(), stories260k_answers(), true, true);
}

TEST_CASE("bpe encodes like llama.cpp on the GPT-2 vocabulary", "[tokenizers][bpe]") {
  check_answers(gpt2(), gpt2_answers(), false, false);
}

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
