// Long inputs of every kind encode and round-trip (a quadratic merge loop would time out).
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "tokenizer_test_util.h"
#include "tokenizers/utf8.h"

namespace semline::test {

namespace {

std::string prose(size_t bytes) {
  static const std::string paragraph =
      "Once upon a time, in a small village by the sea, there lived a girl named Lily. Every morning "
      "she walked 3.5 km to the market, counting the boats (there were 17, sometimes 18) and humming "
      "\"la-la-la\". Caf\xC3\xA9 owners waved; the baker said: \xE2\x80\x9Cgood morning!\xE2\x80\x9D\n"
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E and emoji \xF0\x9F\x98\x80 appear too.   Tabs\tand  spaces.\n";
  std::string s;
  while (s.size() < bytes) s += paragraph;
  return s;
}

}  // namespace

TEST_CASE("megabyte inputs encode and round-trip", "[tokenizers][perf]") {
  constexpr size_t kMiB = size_t{1} << 20;
  std::mt19937 rng(7);
  std::string random(kMiB, '\0');
  for (char& c : random) c = static_cast<char>(rng() & 0xFF);
  const std::pair<const char*, std::string> inputs[] = {
      {"prose", prose(kMiB)},
      {"one letter", std::string(kMiB, 'a')},
      {"spaces", std::string(kMiB, ' ')},
      {"random bytes", random},
  };
  const Tokenizer* tokenizers[] = {&llama_spm(), &gpt2()};
  for (const Tokenizer* t : tokenizers) {
    for (const auto& [name, text] : inputs) {
      INFO(name << (t == &gpt2() ? " (bpe)" : " (spm)"));
      // Linear work is a fraction of a second; a quadratic merge would take hours and meet the
      // test's ctest timeout. Speed itself is measured by benchmarks, not asserted here.
      std::vector<int32_t> ids = t->encode(text, false, false);
      if (t == &gpt2()) CHECK(t->decode(ids) == tokenizers::utf8_lenient(text));
      else if (text.find("\xE2\x96\x81") == std::string::npos) CHECK(t->decode(ids) == text);
    }
  }
}

}  // namespace semline::test
