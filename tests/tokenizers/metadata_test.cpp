// Missing or ill-typed vocabulary metadata gives one line naming the file and the key.
#include <catch2/catch.hpp>

#include "fake_model.h"
#include "tokenizer_test_util.h"
#include "tokenizers/byte_level.h"

namespace semline::test {

using tokenizers::BpeTokenizer;
using tokenizers::SpmTokenizer;

namespace {

FakeModel small_spm() { return make_spm_vocab({{"\xE2\x96\x81", -1}, {"a", -2}}); }

FakeModel small_bpe() {
  FakeModel m("bpe-test.gguf");
  std::vector<std::string> tokens;
  for (const auto& t : tokenizers::byte_level().text) tokens.push_back(t);
  tokens.push_back("ab");
  m.set_string("tokenizer.ggml.model", "gpt2");
  m.set_strings("tokenizer.ggml.tokens", tokens);
  m.set_strings("tokenizer.ggml.merges", {"a b"});
  return m;
}

void spm_fails(const FakeModel& m, std::initializer_list<std::string_view> parts) {
  require_error([&] { SpmTokenizer t(m, {}); }, parts);
}
void bpe_fails(const FakeModel& m, std::initializer_list<std::string_view> parts) {
  require_error([&] { BpeTokenizer t(m, {}); }, parts);
}

}  // namespace

TEST_CASE("the hand-made vocabularies load", "[tokenizers]") {
  FakeModel s = small_spm();
  CHECK(SpmTokenizer(s, {}).n_vocab() == 3 + 256 + 2);
  FakeModel b = small_bpe();
  BpeTokenizer bpe(b, {});
  CHECK(bpe.n_vocab() == 257);
  CHECK(bpe.bos() == -1);
  CHECK(bpe.encode("ab", true, false) == std::vector<int32_t>{256});
}

TEST_CASE("tokens: missing, ill-typed or empty", "[tokenizers]") {
  FakeModel m = small_spm();
  m.erase("tokenizer.ggml.tokens");
  spm_fails(m, {"spm-test.gguf", "tokenizer.ggml.tokens", "missing"});
  m.set_u32("tokenizer.ggml.tokens", 3);
  spm_fails(m, {"tokenizer.ggml.tokens", "array of strings", "u32"});
  m.set_numbers("tokenizer.ggml.tokens", MetaType::I32, std::vector<int32_t>{1, 2});
  spm_fails(m, {"tokenizer.ggml.tokens", "array of strings", "array of i32"});
  m.set_strings("tokenizer.ggml.tokens", {});
  spm_fails(m, {"tokenizer.ggml.tokens", "empty"});
}

TEST_CASE("scores and token types: type and length", "[tokenizers]") {
  FakeModel m = small_spm();
  m.erase("tokenizer.ggml.scores");
  spm_fails(m, {"tokenizer.ggml.scores", "missing"});
  m.set_strings("tokenizer.ggml.scores", {"x"});
  spm_fails(m, {"tokenizer.ggml.scores", "array of numbers", "array of string"});
  m.set_numbers("tokenizer.ggml.scores", MetaType::F32, std::vector<float>(10, 0.f));
  spm_fails(m, {"tokenizer.ggml.scores", "10 entries", "261"});

  FakeModel t = small_spm();
  t.set_numbers("tokenizer.ggml.token_type", MetaType::F32, std::vector<float>(261, 1.f));
  spm_fails(t, {"tokenizer.ggml.token_type", "array of integers"});
  t.set_numbers("tokenizer.ggml.token_type", MetaType::I32, std::vector<int32_t>(5, 1));
  spm_fails(t, {"tokenizer.ggml.token_type", "5 entries"});
}

TEST_CASE("special ids and flags: range and type", "[tokenizers]") {
  FakeModel m = small_spm();
  m.set_u32("tokenizer.ggml.bos_token_id", 261);
  spm_fails(m, {"tokenizer.ggml.bos_token_id", "261", "[0, 261)"});
  m.set_i32("tokenizer.ggml.bos_token_id", -5);
  spm_fails(m, {"tokenizer.ggml.bos_token_id", "-5"});
  m.set_string("tokenizer.ggml.bos_token_id", "1");
  spm_fails(m, {"tokenizer.ggml.bos_token_id", "integer", "string"});
  m.set_i32("tokenizer.ggml.bos_token_id", -1);
  CHECK(SpmTokenizer(m, {}).bos() == -1);

  FakeModel f = small_spm();
  f.set_u32("tokenizer.ggml.add_bos_token", 1);
  spm_fails(f, {"tokenizer.ggml.add_bos_token", "bool", "u32"});
  f = small_spm();
  f.set_string("tokenizer.ggml.add_space_prefix", "yes");
  spm_fails(f, {"tokenizer.ggml.add_space_prefix", "bool"});
}

TEST_CASE("a byte token must read <0xXX>", "[tokenizers][spm]") {
  FakeModel m = small_spm();
  std::vector<int32_t> types(261, 1);
  types[3 + 256] = 6;  // the "▁" piece marked as a byte token
  m.set_numbers("tokenizer.ggml.token_type", MetaType::I32, types);
  spm_fails(m, {"tokenizer.ggml.tokens", "entry 259", "<0xXX>"});
}

TEST_CASE("bpe merges and pre-tokenizer", "[tokenizers][bpe]") {
  FakeModel m = small_bpe();
  m.erase("tokenizer.ggml.merges");
  bpe_fails(m, {"bpe-test.gguf", "tokenizer.ggml.merges", "missing"});
  m.set_strings("tokenizer.ggml.merges", {"a b", "ab"});
  bpe_fails(m, {"tokenizer.ggml.merges", "entry 1", "'ab'"});

  FakeModel p = small_bpe();
  p.set_string("tokenizer.ggml.pre", "unheard-of");
  bpe_fails(p, {"tokenizer.ggml.pre", "'unheard-of'", "bpe supports: gpt-2, phi-2, mpt", "falcon, default"});
  p.set_string("tokenizer.ggml.pre", "default");
  CHECK(BpeTokenizer(p, {}).n_vocab() == 257);
}

}  // namespace semline::test
