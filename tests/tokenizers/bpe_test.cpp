// Byte-level BPE: the pre-tokenizers' word patterns, the byte alphabet, merge order, and the
// Unicode classes and UTF-8 reading they rest on.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "fake_model.h"
#include "tokenizer_test_util.h"
#include "tokenizers/byte_level.h"
#include "tokenizers/pre_tokenizer.h"
#include "tokenizers/unicode_class.h"
#include "tokenizers/utf8.h"

namespace semline::test {

using tokenizers::BpeTokenizer;
using tokenizers::CharClass;
using Words = std::vector<std::string>;

namespace {

// The words a pre-tokenizer cuts `text` into.
Words words_of(std::string_view text, std::string_view pre = "gpt-2") {
  Words out;
  for (auto w : tokenizers::PreTokenizer::named(pre)->split(text)) out.emplace_back(text.substr(w.off, w.len));
  return out;
}

// The 256 byte characters, then the results of `merges` ("left right") in order.
FakeModel make_bpe_vocab(const std::vector<std::string>& merges) {
  std::vector<std::string> tokens;
  for (const auto& t : tokenizers::byte_level().text) tokens.push_back(t);
  for (const auto& m : merges) {
    size_t cut = m.find(' ', 1);
    tokens.push_back(m.substr(0, cut) + m.substr(cut + 1));
  }
  tokens.push_back("<|end|>");
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  FakeModel f("bpe-test.gguf");
  f.set_string("tokenizer.ggml.model", "gpt2");
  f.set_string("tokenizer.ggml.pre", "gpt-2");
  f.set_strings("tokenizer.ggml.tokens", tokens);
  f.set_numbers("tokenizer.ggml.token_type", MetaType::I32, types);
  f.set_strings("tokenizer.ggml.merges", merges);
  f.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(tokens.size() - 1));
  return f;
}

std::vector<std::string> pieces_of(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.piece(id));
  return out;
}

}  // namespace

TEST_CASE("the gpt-2 pre-tokenizer follows the GPT-2 pattern", "[tokenizers][bpe]") {
  CHECK(words_of("Hello world") == Words{"Hello", " world"});
  CHECK(words_of("  a") == Words{" ", " a"});
  CHECK(words_of("a  ") == Words{"a", "  "});
  CHECK(words_of("hello   world") == Words{"hello", "  ", " world"});
  CHECK(words_of("a\n\nb") == Words{"a", "\n", "\n", "b"});
  CHECK(words_of("I'm they're we'll he'd") == Words{"I", "'m", " they", "'re", " we", "'ll", " he", "'d"});
  CHECK(words_of("x'S 'x") == Words{"x", "'", "S", " '", "x"});  // contractions are lower case only
  CHECK(words_of("abc123 45.6!!") == Words{"abc", "123", " 45", ".", "6", "!!"});
  CHECK(words_of("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC") == Words{"caf\xC3\xA9", " \xE6\x97\xA5\xE6\x9C\xAC"});
  CHECK(words_of("a\xC2\xA0" "b") == Words{"a", "\xC2\xA0", "b"});  // NBSP is \s
  CHECK(words_of("") == Words{});
  CHECK(words_of(" ") == Words{" "});
}

TEST_CASE("the gpt-2 pre-tokenizer puts malformed bytes with punctuation", "[tokenizers][bpe]") {
  CHECK(words_of("a\x80" "b") == Words{"a", "\x80", "b"});
  CHECK(words_of("a\x80\xFF!") == Words{"a", "\x80\xFF!"});
  CHECK(words_of("x \xE2\x82") == Words{"x", " \xE2\x82"});
}

TEST_CASE("character classes for letters, numbers and spaces", "[tokenizers][bpe]") {
  using tokenizers::char_class;
  CHECK(char_class('A') == CharClass::Letter);
  CHECK(char_class(0x00E9) == CharClass::Letter);   // é
  CHECK(char_class(0x4E2D) == CharClass::Letter);   // 中
  CHECK(char_class(0x05D0) == CharClass::Letter);   // א
  CHECK(char_class(0x1D400) == CharClass::Letter);  // mathematical bold A
  CHECK(char_class('7') == CharClass::Number);
  CHECK(char_class(0x0663) == CharClass::Number);   // Arabic-Indic three
  CHECK(char_class(0x00BD) == CharClass::Number);   // ½
  CHECK(char_class(0x2167) == CharClass::Number);   // Roman numeral eight
  CHECK(char_class(' ') == CharClass::Space);
  CHECK(char_class('\n') == CharClass::Space);
  CHECK(char_class(0x3000) == CharClass::Space);
  CHECK(char_class(0x200B) == CharClass::Other);    // zero-width space is not \s
  CHECK(char_class('!') == CharClass::Other);
  CHECK(char_class(0x1F600) == CharClass::Other);   // emoji
  CHECK(char_class(0x0301) == CharClass::Other);    // combining acute accent (Mn)
  CHECK(char_class(tokenizers::kInvalidCodePoint) == CharClass::Other);
}

TEST_CASE("general categories, NFD bases and lowercase from the Unicode tables", "[tokenizers]") {
  using namespace tokenizers;
  CHECK(is_punctuation('!'));
  CHECK(is_punctuation(0x3002));  // 。
  CHECK_FALSE(is_punctuation('$'));
  CHECK(is_symbol('$'));
  CHECK(is_symbol(0x1F600));      // 😀
  CHECK(is_mark(0x0301));         // combining acute accent
  CHECK(is_control(0x200B));      // zero width space: a format character
  CHECK(is_control(0x0007));
  CHECK_FALSE(is_control(0x0378));  // unassigned
  CHECK(nfd_base(0x00E9) == 'e');   // é
  CHECK(nfd_base(0x1EA5) == 'a');   // ấ
  CHECK(nfd_base('x') == 'x');
  CHECK(to_lower('A') == 'a');
  CHECK(to_lower(0x0130) == 'i');   // İ: the first character of its lowercase
  CHECK(to_lower(0x0416) == 0x0436);  // Ж
  CHECK(to_lower('7') == '7');
}

TEST_CASE("UTF-8 reading refuses malformed sequences byte by byte", "[tokenizers]") {
  using tokenizers::utf8_next;
  auto unit = [](std::string_view s) { return utf8_next(s, 0); };
  CHECK(unit("\xE2\x82\xAC").cp == 0x20AC);
  CHECK(unit("\xE2\x82\xAC").len == 3);
  CHECK(unit("\xF0\x9F\x98\x80").cp == 0x1F600);
  for (std::string_view bad : {"\x80", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", "\xFF", "\xC3("}) {
    INFO(shown(bad));
    CHECK(unit(bad).cp == tokenizers::kInvalidCodePoint);
    CHECK(unit(bad).len == 1);
  }
}

TEST_CASE("utf8_lenient reads malformed UTF-8 as llama.cpp does before byte-level BPE", "[tokenizers][bpe]") {
  using tokenizers::utf8_lenient;
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(utf8_lenient("caf\xC3\xA9") == "caf\xC3\xA9");                     // well-formed: unchanged
  CHECK(utf8_lenient("a\xFF" "b") == "a" + fffd + "b");                       // no sequence starts with 0xFF
  CHECK(utf8_lenient("\xE2\x82") == fffd + fffd);                            // cut short: byte by byte
  CHECK(utf8_lenient("a\x80") == "a" + fffd);                                // a lone continuation byte
  CHECK(utf8_lenient("\xC0\xAF") == "/");                                    // overlong: decoded all the same
  CHECK(utf8_lenient("\xED\xA0\x80") == "\xED\xA0\x80");                    // a surrogate passes
  CHECK(utf8_lenient("\xF7\xBF\xBF\xBF") == fffd + fffd + fffd + fffd);        // past U+10FFFF
}

TEST_CASE("the byte-level alphabet is GPT-2's", "[tokenizers][bpe]") {
  const auto& bl = tokenizers::byte_level();
  CHECK(bl.text['A'] == "A");
  CHECK(bl.text[' '] == "\xC4\xA0");   // U+0120 Ġ
  CHECK(bl.text['\n'] == "\xC4\x8A");  // U+010A Ċ
  CHECK(bl.text[0] == "\xC4\x80");     // U+0100
  CHECK(bl.text[0xAD] == "\xC5\x83");  // U+0143, the last of the 68 moved bytes
  for (int b = 0; b < 256; ++b) {
    tokenizers::Utf8Unit u = tokenizers::utf8_next(bl.text[b], 0);
    CHECK(bl.byte_of(u.cp) == b);
  }
}

TEST_CASE("bpe applies merges by rank, the leftmost on ties", "[tokenizers][bpe]") {
  {
    FakeModel m = make_bpe_vocab({"b c", "a b", "a bc"});
    BpeTokenizer t(m, {});
    CHECK(pieces_of(t, t.encode("abc", false, false)) == Words{"abc"});
    CHECK(pieces_of(t, t.encode("abab", false, false)) == Words{"ab", "ab"});
  }
  {
    FakeModel m = make_bpe_vocab({"a b", "b c", "a bc"});
    BpeTokenizer t(m, {});
    CHECK(pieces_of(t, t.encode("abc", false, false)) == Words{"ab", "c"});
  }
  {
    FakeModel m = make_bpe_vocab({"a a"});
    BpeTokenizer t(m, {});
    CHECK(pieces_of(t, t.encode("aaa", false, false)) == Words{"aa", "a"});
  }
  {
    FakeModel m = make_bpe_vocab({"\xC4\xA0 w", "\xC4\xA0w o"});
    BpeTokenizer t(m, {});
    CHECK(pieces_of(t, t.encode("o wo", false, false)) == Words{"o", "\xC4\xA0wo"});  // merges stay in words
    CHECK(t.decode(t.encode("o wo", false, false)) == "o wo");
  }
}

TEST_CASE("bpe BOS, control tokens and token ids", "[tokenizers][bpe]") {
  FakeModel m = make_bpe_vocab({"a b"});
  const int32_t end = 256 + 1;
  m.set_u32("tokenizer.ggml.bos_token_id", end);
  BpeTokenizer t(m, {});
  CHECK(t.bos() == end);
  CHECK(t.encode("ab", true, false).size() == 1);  // no add_bos_token: GPT-2 starts bare
  CHECK(t.token_bytes(end).empty());
  CHECK(t.decode(std::vector<int32_t>{256, end}) == "ab");

  // Without the key a Llama 3 vocabulary starts with BOS, as llama.cpp defaults it.
  m.set_string("tokenizer.ggml.pre", "llama-bpe");
  CHECK(BpeTokenizer(m, {}).encode("ab", true, false) == std::vector<int32_t>{end, 256});
  m.set_string("tokenizer.ggml.pre", "gpt-2");

  m.set_bool("tokenizer.ggml.add_bos_token", true);
  BpeTokenizer u(m, {});
  CHECK(u.encode("ab", true, false) == std::vector<int32_t>{end, 256});
  require_error([&] { u.decode(std::vector<int32_t>{258}); }, {"bpe-test.gguf", "token id 258", "[0, 258)"});
}

TEST_CASE("bpe spells a byte without a token by the unknown token, else refuses", "[tokenizers][bpe]") {
  FakeModel m = make_bpe_vocab({});
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(b == 0xC3 ? "<unk>" : tokenizers::byte_level().text[b]);
  m.set_strings("tokenizer.ggml.tokens", tokens);
  m.set_numbers("tokenizer.ggml.token_type", MetaType::I32, std::vector<int32_t>(256, 1));
  m.erase("tokenizer.ggml.eos_token_id");
  {
    BpeTokenizer t(m, {});
    require_error([&] { t.encode("a\xC3\xA9", false, false); }, {"bpe-test.gguf", "byte 0xC3"});
  }
  m.set_u32("tokenizer.ggml.unknown_token_id", 0xC3);
  BpeTokenizer t(m, {});
  CHECK(t.encode("a\xC3\xA9", false, false) == std::vector<int32_t>{'a', 0xC3, 0xA9});  // é's first byte unknown
}

}  // namespace semline::test
