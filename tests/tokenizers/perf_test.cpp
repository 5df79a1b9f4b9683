// Long inputs stay linear-ish (no quadratic merge loops) and ordinary text encodes fast.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <string>

#include "tokenizer_test_util.h"

namespace semline::test {

namespace {

// Sanitizer builds (SEMLINE_SANITIZED, set by cmake/sanitizers.cmake) run this code several times
// slower; the time bounds scale with them so that they keep their meaning.
#ifdef SEMLINE_SANITIZED
constexpr double kBuildSlowdown = 8;
#else
constexpr double kBuildSlowdown = 1;
#endif

double seconds_to_encode(const Tokenizer& t, const std::string& s, std::vector<int32_t>* ids = nullptr) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> out = t.encode(s, false);
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (ids) *ids = std::move(out);
  return dt;
}

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

TEST_CASE("megabyte inputs encode in bounded time and round-trip", "[tokenizers][perf]") {
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
      std::vector<int32_t> ids;
      double dt = seconds_to_encode(*t, text, &ids);
      // Linear work is a fraction of a second; a quadratic merge would take hours.
      CHECK(dt < 5.0 * kBuildSlowdown);
      if (!(t == &llama_spm() && text.find("\xE2\x96\x81") != std::string::npos)) CHECK(t->decode(ids) == text);
    }
  }
}

TEST_CASE("a few kilobytes of text encode in well under a millisecond per kilobyte", "[tokenizers][perf]") {
  const std::string text = prose(4096);
  const Tokenizer* tokenizers[] = {&llama_spm(), &stories260k(), &gpt2()};
  for (const Tokenizer* t : tokenizers) {
    double best = 1e9;
    for (int rep = 0; rep < 20; ++rep) best = std::min(best, seconds_to_encode(*t, text));
    double ms_per_kb = best * 1e3 / (text.size() / 1024.0);
    INFO("ms per KB: " << ms_per_kb);
    CHECK(ms_per_kb < 0.5 * kBuildSlowdown);
  }
}

}  // namespace semline::test
