// decode(encode(s)) == s over random text, and streaming: the token_bytes of the ids, joined,
// are the input's bytes even where a character is spelled by several byte tokens.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "common/seed.h"
#include "tokenizer_test_util.h"
#include "tokenizers/utf8.h"

namespace semline::test {

namespace {

// Random valid UTF-8 weighted towards what text holds: ASCII words and spaces, accents, CJK,
// emoji, and now and then any scalar value.
std::string random_text(std::mt19937& rng, bool allow_space_mark) {
  std::uniform_int_distribution<int> len_dist(0, 48), kind(0, 9);
  std::string s;
  for (int n = len_dist(rng); n > 0; --n) {
    uint32_t cp;
    switch (kind(rng)) {
      case 0: case 1: case 2: cp = std::uniform_int_distribution<uint32_t>('a', 'z')(rng); break;
      case 3: cp = " \n\t '.,!?0123456789-"[std::uniform_int_distribution<int>(0, 19)(rng)]; break;
      case 4: cp = std::uniform_int_distribution<uint32_t>(0x20, 0x7E)(rng); break;
      case 5: cp = std::uniform_int_distribution<uint32_t>(0xA0, 0x24F)(rng); break;
      case 6: cp = std::uniform_int_distribution<uint32_t>(0x4E00, 0x9FFF)(rng); break;
      case 7: cp = std::uniform_int_distribution<uint32_t>(0x1F300, 0x1FAFF)(rng); break;
      default: cp = std::uniform_int_distribution<uint32_t>(1, 0x10FFFF)(rng); break;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
    if (cp == 0x2581 && !allow_space_mark) cp = 'y';
    tokenizers::utf8_append(s, cp);
  }
  return s;
}

std::string random_bytes(std::mt19937& rng) {
  std::uniform_int_distribution<int> len_dist(0, 48), byte(0, 255);
  std::string s;
  for (int n = len_dist(rng); n > 0; --n) s += static_cast<char>(byte(rng));
  return s;
}

std::string joined_bytes(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += tok.token_bytes(id);
  return s;
}

// SentencePiece streams the dummy prefix's space; decode() alone drops it. Byte-level BPE reads
// malformed UTF-8 as llama.cpp does (utf8_lenient) and gives that back.
void check_round_trip(const Tokenizer& tok, const std::string& s, bool dummy_prefix) {
  INFO("text: \"" << shown(s) << "\" (SEMLINE_TEST_SEED=" << testing::seed() << ")");
  const std::string want = dummy_prefix ? s : tokenizers::utf8_lenient(s);
  std::vector<int32_t> ids = tok.encode(s, true, false);
  CHECK(tok.decode(ids) == want);
  CHECK(joined_bytes(tok, ids) == (dummy_prefix && !s.empty() ? " " + want : want));
}

}  // namespace

TEST_CASE("random UTF-8 text round-trips through every vocabulary", "[tokenizers]") {
  std::mt19937 rng(testing::seed());
  for (int i = 0; i < 300; ++i) {
    std::string s = random_text(rng, false);
    check_round_trip(llama_spm(), s, true);
    check_round_trip(stories260k(), s, true);
    check_round_trip(gpt2(), s, false);
  }
}

TEST_CASE("arbitrary bytes round-trip, malformed UTF-8 included (as llama.cpp reads it, for byte-level BPE)", "[tokenizers]") {
  std::mt19937 rng(testing::seed() + 1);
  int malformed = 0;
  for (int i = 0; i < 300; ++i) {
    std::string s = random_bytes(rng);
    for (size_t p = 0; p < s.size(); p += tokenizers::utf8_next(s, p).len)
      if (tokenizers::utf8_next(s, p).cp == tokenizers::kInvalidCodePoint) ++malformed;
    check_round_trip(gpt2(), s, false);
    if (s.find("\xE2\x96\x81") == std::string::npos) {
      check_round_trip(llama_spm(), s, true);
      check_round_trip(stories260k(), s, true);
    }
  }
  CHECK(malformed > 1000);  // the inputs really were malformed
}

TEST_CASE("streaming joins byte tokens back into a split character", "[tokenizers][spm]") {
  // tok512 has no piece for the emoji, so its four bytes come as four byte tokens.
  const std::string emoji = "\xF0\x9F\x99\x82";
  std::vector<int32_t> ids = stories260k().encode("a" + emoji + "b", false, false);
  std::string streamed;
  int partial = 0;
  for (int32_t id : ids) {
    std::string bytes = stories260k().token_bytes(id);
    if (bytes.size() == 1 && static_cast<unsigned char>(bytes[0]) >= 0x80) ++partial;
    streamed += bytes;
  }
  CHECK(partial == 4);
  CHECK(streamed == " a" + emoji + "b");
}

TEST_CASE("a lone invalid byte is spelled by its byte token", "[tokenizers][spm]") {
  // 0x80 starts no character: it becomes <0x80> (id 3 + 0x80) while its neighbours still merge.
  std::vector<int32_t> ids = llama_spm().encode("Hello\x80world", false, false);
  REQUIRE(ids.size() == 3);
  CHECK(ids[0] == 15043);  // "▁Hello"
  CHECK(ids[1] == 3 + 0x80);
  CHECK(llama_spm().piece(ids[2]) == "world");
  CHECK(llama_spm().decode(ids) == "Hello\x80world");
}

}  // namespace semline::test
