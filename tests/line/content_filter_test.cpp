// The content filter in a real line: greedy text from stories260K (SentencePiece, whole-word
// tokens) and slm4096 (a character-level GPT-2, where every word is spelled across tokens) with
// banned strings, regular expressions and ids, against the same line unfiltered.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>

#include "core/engine/generator.h"
#include "line/line_util.h"

using namespace semline;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const std::string kStories = std::string(SEMLINE_MODELS_DIR) + "/gguf/stories260K.gguf";
const std::string kSlm = std::string(SEMLINE_MODELS_DIR) + "/gpt2/slm4096";

// A line over `path` with the sampler chain given in TOML, generating without stopping at EOS.
struct Line : linetest::Line {
  Line(const std::string& path, const std::string& sampler) : linetest::Line(path, "[stages]\nsampler = " + sampler + "\n") {}
  GenerateResult run(const std::string& prompt, int32_t n) {
    GenerateOptions go;
    go.max_tokens = n;
    go.stop_at_eos = false;
    return generate(*pipeline, pipeline->tokenizer().encode(prompt, true, false), go);
  }
};

std::string error_of(const std::string& path, const std::string& sampler) {
  try {
    Line line(path, sampler);
    line.run("Once upon a time", 8);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("content filter on stories260K: a banned name, a phrase across tokens, a pattern, ids") {
  const std::string greedy = Line(kStories, "{ chain = [\"greedy\"] }").run("Once upon a time", 60).text;
  REQUIRE_THAT(greedy, Contains(" named Lily") && Contains("Lily"));

  SECTION("a word") {
    const std::string text = Line(kStories, "{ chain = [\"content_filter\", \"greedy\"], ban = [\"Lily\"] }")
                                 .run("Once upon a time", 60).text;
    CHECK_THAT(text, !Contains("Lily"));
    CHECK_THAT(text, Contains(" named "));  // the story goes on with another name
  }
  SECTION("a phrase made of two tokens: only the token completing it is dropped") {
    // ' named' and ' Lily' are single tokens: the filter must see the text before the candidate.
    const std::string text = Line(kStories, "{ chain = [\"content_filter\", \"greedy\"], ban = [\"named Lily\"] }")
                                 .run("Once upon a time", 60).text;
    CHECK_THAT(text, !Contains("named Lily") && Contains(" named "));
    CHECK(text != greedy);
  }
  SECTION("a regular expression, case folded") {
    const std::string text =
        Line(kStories,
             "{ chain = [\"content_filter\", \"greedy\"], ban_regex = [\"\\\\bLI[a-z]*Y\\\\b\"], ignore_case = true }")
            .run("Once upon a time", 60).text;
    CHECK_THAT(text, !Contains("Lily") && !Contains("lily"));
  }
  SECTION("a banned word in the prompt bans nothing by itself") {
    const std::string filtered =
        Line(kStories, "{ chain = [\"content_filter\", \"greedy\"], ban = [\"Lily\"] }").run("Lily was happy.", 30).text;
    CHECK_THAT(filtered, !Contains("Lily"));
    CHECK(!filtered.empty());
  }
  SECTION("token ids, and one parameter table per member") {
    Line plain(kStories, "{ chain = [\"greedy\"] }");
    const int32_t lily = plain.pipeline->tokenizer().encode(" Lily", false, false).back();
    const std::string text = Line(kStories, "{ chain = [\"content_filter\", \"greedy\"], content_filter = { ban_ids = [" +
                                                std::to_string(lily) + "] } }")
                                 .run("Once upon a time", 60).text;
    CHECK_THAT(text, !Contains(" Lily"));
  }
  SECTION("what a filter cannot do is refused with the parameter named") {
    CHECK_THAT(error_of(kStories, "{ chain = [\"content_filter\", \"greedy\"], ban_regex = [\"(\"] }"),
               Contains("sampler.content_filter.any (plugin 'samplers'): ban_regex[0] = \"(\" is not a valid regular "
                        "expression"));
    CHECK_THAT(error_of(kStories, "{ chain = [\"content_filter\", \"greedy\"], ban_ids = [512] }"),
               Contains("ban_ids: token 512 is outside the vocabulary (0..511)"));
    CHECK_THAT(error_of(kStories, "{ chain = [\"content_filter\", \"greedy\"], ban_ids = [-1] }"),
               Contains("ban_ids = [-1] is out of range; expected an integer >= 0 for each element"));
    CHECK_THAT(error_of(kStories, "{ chain = [\"content_filter\", \"greedy\"], ban = [\"\"] }"),
               Contains("ban[0] is empty"));
  }
}

TEST_CASE("content filter on slm4096: a word spelled one character per token is caught where it completes") {
  const std::string prompt = "Q: Can you reason?\nA:";
  const std::string greedy = Line(kSlm, "{ chain = [\"greedy\"] }").run(prompt, 60).text;
  REQUIRE_THAT(greedy, Contains(" I can produce the shape of reasoning."));
  // 'reason' in the prompt does not count; in the answer it is never completed.
  const std::string text =
      Line(kSlm, "{ chain = [\"content_filter\", \"greedy\"], ban = [\"reason\"] }").run(prompt, 60).text;
  CHECK_THAT(text, !Contains("reason"));
  CHECK_THAT(text, StartsWith(" I can produce the shape of reaso"));  // up to the last character
  // Banning every character the model could write empties the set: the host names the member.
  Line line(kSlm, "{ chain = [\"content_filter\", \"greedy\"], ban_regex = [\"[\\\\s\\\\S]\"] }");
  try {
    line.run(prompt, 4);
    FAIL("a filter that bans everything went unnoticed");
  } catch (const Error& e) {
    CHECK_THAT(std::string(e.what()), Contains("sampler.content_filter.any (plugin 'samplers'): left no candidate"));
  }
}
