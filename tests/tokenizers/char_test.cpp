// The char tokenizer on a vocabulary built here and on slm4096's own (read from its Hugging Face
// folder): one id per UTF-8 character, decode the exact inverse, and every text it cannot spell
// refused with the character and its byte offset.
#include <catch2/catch.hpp>

#include <functional>

#include "tokenizers/char_tokenizer.h"
#include "core/model/model_file.h"
#include "fake_model.h"

using namespace semline;
using semline::tokenizers::CharTokenizer;

namespace {

test::FakeModel char_vocab(const std::vector<std::string>& tokens) {
  test::FakeModel m;
  m.set_string("tokenizer.ggml.model", "char");
  m.set_strings("tokenizer.ggml.tokens", tokens);
  return m;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("expected semline::Error");
  return {};
}

}  // namespace

TEST_CASE("char: one id per character, multi-byte characters included, decode joins them", "[tokenizers]") {
  const test::FakeModel m = char_vocab({"a", "b", "\xC3\xA9", " ", "\xF0\x9F\x98\x80", "\n"});
  CharTokenizer tok(m, {});
  const std::string text = "ab \xC3\xA9\n\xF0\x9F\x98\x80" "a";
  const std::vector<int32_t> ids = tok.encode(text, true, false);
  CHECK(ids == std::vector<int32_t>{0, 1, 3, 2, 5, 4, 0});
  CHECK(tok.decode(ids) == text);
  CHECK(tok.token_bytes(2) == "\xC3\xA9");
  CHECK(tok.encode("", true, false).empty());
  CHECK(tok.bos() == -1);
  CHECK(tok.eos() == -1);
  CHECK(tok.n_vocab() == 6);
}

TEST_CASE("char: BOS only when the file asks for it and names one", "[tokenizers]") {
  test::FakeModel m = char_vocab({"a", "b", "<"});
  m.set_u32("tokenizer.ggml.bos_token_id", 2);
  CHECK(CharTokenizer(m, {}).encode("ab", true, false) == std::vector<int32_t>{0, 1});
  m.set_bool("tokenizer.ggml.add_bos_token", true);
  CharTokenizer tok(m, {});
  CHECK(tok.encode("ab", true, false) == std::vector<int32_t>{2, 0, 1});
  CHECK(tok.encode("ab", false, false) == std::vector<int32_t>{0, 1});
}

TEST_CASE("char: characters outside the vocabulary and malformed UTF-8 are named with their offset", "[tokenizers]") {
  const test::FakeModel m = char_vocab({"a", "b"});
  CharTokenizer tok(m, {});
  const std::string e1 = error_of([&] { tok.encode("ab\xC3\xA9", false, false); });
  CHECK_THAT(e1, Catch::Contains("fake.gguf") && Catch::Contains("the character '\xC3\xA9' (U+00E9) at byte offset 2") &&
                     Catch::Contains("not in the vocabulary of 2 characters"));
  CHECK_THAT(error_of([&] { tok.encode("a\tb", false, false); }), Catch::Contains("the character U+0009 at byte offset 1"));
  CHECK_THAT(error_of([&] { tok.encode("ab\xFF", false, false); }),
             Catch::Contains("byte 0xFF at byte offset 2 of the text starts no UTF-8 character"));
  CHECK_THAT(error_of([&] { tok.decode(std::vector<int32_t>{2}); }), Catch::Contains("token id 2 is outside"));
}

TEST_CASE("char: a vocabulary entry that is not one character is refused", "[tokenizers]") {
  for (const std::string& bad : {std::string("ab"), std::string(""), std::string("\xC3")}) {
    const test::FakeModel m = char_vocab({"a", bad});
    CHECK_THAT(error_of([&] { CharTokenizer(m, {}); }),
               Catch::Contains("tokenizer.ggml.tokens entry 1") && Catch::Contains("is not one UTF-8 character"));
  }
}

TEST_CASE("char: slm4096's vocabulary spells its corpus and round-trips it", "[tokenizers]") {
  auto m = open_model_file(std::string(SEMLINE_MODELS_DIR) + "/gpt2/slm4096");
  CharTokenizer tok(*m, {});
  CHECK(tok.n_vocab() == 54);
  const std::string text = "Q: Can you reason?\nA: I can produce the shape of reasoning.";
  const std::vector<int32_t> ids = tok.encode(text, true, false);
  CHECK(ids.size() == text.size());
  CHECK(ids[0] == 23);  // 'Q' in vocab.json
  CHECK(ids[2] == 1);   // ' '
  CHECK(tok.decode(ids) == text);
}
