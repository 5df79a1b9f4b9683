// SentencePiece rules on hand-made vocabularies: merge order, dummy prefix, BOS, byte fallback
// and what each token type prints.
#include <catch2/catch.hpp>

#include <vector>

#include "fake_model.h"
#include "tokenizer_test_util.h"

namespace semline::test {

using tokenizers::SpmTokenizer;

namespace {

constexpr int32_t kFirstPiece = 3 + 256;  // after <unk> <s> </s> and the byte tokens

std::vector<std::string> pieces_of(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.piece(id));
  return out;
}

using Pieces = std::vector<std::string>;

}  // namespace

TEST_CASE("spm merges the highest-scoring pair first, the leftmost on ties", "[tokenizers][spm]") {
  auto run = [](float ab, float bc) {
    FakeModel m = make_spm_vocab({{"a", -1}, {"b", -1}, {"c", -1}, {"ab", ab}, {"bc", bc}});
    m.set_bool("tokenizer.ggml.add_space_prefix", false);
    SpmTokenizer t(m, {});
    return pieces_of(t, t.encode("abc", false, false));
  };
  CHECK(run(-2, -3) == Pieces{"ab", "c"});
  CHECK(run(-3, -2) == Pieces{"a", "bc"});
  CHECK(run(-2, -2) == Pieces{"ab", "c"});
}

TEST_CASE("spm merges only through pieces of the vocabulary", "[tokenizers][spm]") {
  // "abcd" is a piece but unreachable: neither "abc" nor "bcd" is, and "ab"+"cd" wins the rest.
  FakeModel m = make_spm_vocab({{"a", -1}, {"b", -1}, {"c", -1}, {"d", -1}, {"ab", -5}, {"cd", -4}, {"abcd", -1}});
  m.set_bool("tokenizer.ggml.add_space_prefix", false);
  SpmTokenizer t(m, {});
  CHECK(pieces_of(t, t.encode("abcd", false, false)) == Pieces{"abcd"});
  CHECK(pieces_of(t, t.encode("abdc", false, false)) == Pieces{"ab", "d", "c"});
}

TEST_CASE("spm dummy prefix: on by default, off by add_space_prefix, removed by decode", "[tokenizers][spm]") {
  std::vector<SpmPiece> vocab = {{"\xE2\x96\x81", -1}, {"h", -1}, {"i", -1}, {"hi", -2}, {"\xE2\x96\x81hi", -3}};
  FakeModel with = make_spm_vocab(vocab);
  SpmTokenizer t(with, {});
  CHECK(pieces_of(t, t.encode("hi hi", false, false)) == Pieces{"\xE2\x96\x81hi", "\xE2\x96\x81hi"});
  CHECK(t.encode("", false, false).empty());
  CHECK(t.decode(t.encode("hi hi", true, false)) == "hi hi");
  CHECK(t.decode(t.encode(" hi", true, false)) == " hi");

  FakeModel without = make_spm_vocab(vocab);
  without.set_bool("tokenizer.ggml.add_space_prefix", false);
  SpmTokenizer u(without, {});
  CHECK(pieces_of(u, u.encode("hi hi", false, false)) == Pieces{"hi", "\xE2\x96\x81hi"});
  CHECK(u.decode(u.encode(" hi", false, false)) == " hi");
}

TEST_CASE("spm adds BOS only when both the caller and the vocabulary ask", "[tokenizers][spm]") {
  FakeModel m = make_spm_vocab({{"x", -1}});
  SpmTokenizer t(m, {});
  CHECK(t.encode("", true, false) == std::vector<int32_t>{1});
  CHECK(t.encode("", false, false).empty());
  CHECK(t.encode("x", true, false).front() == 1);

  m.set_bool("tokenizer.ggml.add_bos_token", false);
  SpmTokenizer u(m, {});
  CHECK(u.encode("x", true, false).front() != 1);

  FakeModel none = make_spm_vocab({{"x", -1}});
  none.set_u32("tokenizer.ggml.bos_token_id", 0xFFFFFFFFu);
  SpmTokenizer v(none, {});
  CHECK(v.bos() == -1);
  CHECK(v.encode("", true, false).empty());
}

TEST_CASE("spm byte fallback: <0xXX>, else the unknown token, else an error", "[tokenizers][spm]") {
  FakeModel m = make_spm_vocab({{"\xE2\x96\x81", -1}, {"a", -1}});
  SpmTokenizer t(m, {});
  // "é" is no piece: its two bytes come as <0xC3> <0xA9>.
  CHECK(t.encode("a\xC3\xA9", false, false) == std::vector<int32_t>{kFirstPiece, kFirstPiece + 1, 3 + 0xC3, 3 + 0xA9});

  FakeModel no_bytes = make_spm_vocab({{"\xE2\x96\x81", -1}, {"a", -1}}, false);
  SpmTokenizer u(no_bytes, {});
  CHECK(u.encode("\xC3\xA9", false, false) == std::vector<int32_t>{3, 0, 0});

  no_bytes.erase("tokenizer.ggml.unknown_token_id");
  SpmTokenizer v(no_bytes, {});
  require_error([&] { v.encode("\xC3\xA9", false, false); }, {"spm-test.gguf", "byte 0xC3", "<0xC3>"});
}

TEST_CASE("spm decode: what each token type prints", "[tokenizers][spm]") {
  FakeModel m = make_spm_vocab({{"\xE2\x96\x81" "a", -1}, {"b\xE2\x96\x81" "c", -1}});
  SpmTokenizer t(m, {});
  const int32_t a = kFirstPiece, bc = kFirstPiece + 1;
  CHECK(t.token_bytes(a) == " a");
  CHECK(t.token_bytes(bc) == "b c");
  CHECK(t.token_bytes(0) == "\xEF\xBF\xBD");  // <unk>
  CHECK(t.token_bytes(1).empty());            // <s>
  CHECK(t.token_bytes(3 + 'Z') == "Z");       // <0x5A>
  CHECK(t.piece(3 + 'Z') == "<0x5A>");
  // The dummy-prefix space goes only at the sequence start, after tokens that print nothing.
  CHECK(t.decode(std::vector<int32_t>{1, a, a, 2}) == "a a");
  CHECK(t.decode(std::vector<int32_t>{bc, a}) == "b c a");
  CHECK(t.decode(std::vector<int32_t>{}).empty());
}

TEST_CASE("spm rejects token ids outside the vocabulary", "[tokenizers][spm]") {
  const Tokenizer& t = llama_spm();
  require_error([&] { t.decode(std::vector<int32_t>{1, 32000}); }, {"token id 32000", "[0, 32000)"});
  require_error([&] { t.token_bytes(-1); }, {"token id -1"});
  require_error([&] { t.piece(1 << 30); }, {"outside the vocabulary"});
}

}  // namespace semline::test
