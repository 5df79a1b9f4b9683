// A proposer from a plugin, chosen by name in [speculative]: the out-of-tree example
// (examples/proposer-corpus) built beside the tests and loaded like any plugin. Its drafts come
// from a text file; the output is plain decoding's, and what a proposer throws costs only drafts.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <semline/plugin.h>

#include "core/host/plugin_host.h"
#include "engine_fixture.h"

using namespace semline;
using namespace semline::engine_test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// The built plugins and the example proposer, loaded once for the process like built_plugins().
const StageRegistry& with_corpus_proposer() {
  static StageRegistry* reg = [] {
    auto* r = new StageRegistry();
    static PluginHost host(*r);
    const auto refused = host.load_all(
        {SEMLINE_PLUGIN_DIR, fs::path(SEMLINE_TEST_PLUGIN_DIR) / "libsemline-test-example-corpus.so"});
    if (!refused.empty()) FAIL("refused: " << refused.front());
    return r;
  }();
  return *reg;
}

EngineOptions corpus(int32_t max_seqs, const std::string& file, const std::string& extra = "") {
  const Config c = parse_config("[model]\npath = \"m.gguf\"\n[runtime]\nmax_seqs = " + std::to_string(max_seqs) +
                                    "\n[speculative]\nproposer = \"corpus\"\nk = 6\ncorpus = \"" + file + "\"\n" + extra,
                                "corpus.toml");
  return engine_options(c);
}

std::vector<Received> run_all(Line& line, const EngineOptions& opt, const std::vector<RequestOptions>& requests,
                              EngineCounters* counters = nullptr) {
  Engine engine(*line.pipeline, opt);
  Collector c;
  std::vector<uint64_t> ids;
  for (const RequestOptions& r : requests) ids.push_back(engine.submit(r, c.fn()));
  engine.run();
  if (counters) *counters = engine.counters();
  std::vector<Received> out;
  for (uint64_t id : ids) out.push_back(c.of(id));
  return out;
}

}  // namespace

TEST_CASE("a plugin's proposer, chosen by name: drafts from its corpus, the text of plain decoding") {
  Line line(kStories, "max_seqs = 8\n", with_corpus_proposer());
  const std::vector<RequestOptions> requests = story_requests(line, 8, 48);
  const std::vector<Received> plain = run_all(line, seqs(8), requests);

  // The corpus: what the model wrote for half of the prompts. Those answers come back mostly
  // from drafts; the others find little.
  TempDir dir;
  const std::string file = dir.file("corpus.txt");
  {
    std::ofstream out(file);
    for (size_t i = 0; i < 4; ++i) out << kPrompts[i] << plain[i].text << "\n\n";
  }
  EngineCounters counters;
  const std::vector<Received> spec = run_all(line, corpus(8, file), requests, &counters);
  for (size_t i = 0; i < requests.size(); ++i) {
    INFO("request " << i);
    CHECK(spec[i].tokens == plain[i].tokens);
    CHECK(spec[i].text == plain[i].text);
  }
  CHECK(counters.spec_accepted_tokens > counters.spec_draft_tokens / 2);
  int32_t accepted_known = 0, accepted_new = 0;
  for (size_t i = 0; i < 4; ++i) accepted_known += spec[i].stats.accepted_tokens;
  for (size_t i = 4; i < 8; ++i) accepted_new += spec[i].stats.accepted_tokens;
  CHECK(accepted_known > 4 * 30);
  CHECK(accepted_known > 2 * accepted_new);
}

TEST_CASE("a plugin proposer's keys are checked against its entry, its errors name key and plugin") {
  Line line(kStories, "", with_corpus_proposer());
  auto refusal = [&](const EngineOptions& o) {
    try {
      Engine engine(*line.pipeline, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK_THAT(refusal(corpus(1, "x.txt", "corpse = 1\n")),
             Contains("corpus.toml:9:10") && Contains("unknown parameter 'corpse' for proposer corpus") &&
                 Contains("did you mean 'corpus'?"));
  CHECK_THAT(refusal(corpus(1, "x.txt", "min_match = 0\n")), Contains("min_match = 0 is out of range"));
  CHECK_THAT(refusal(corpus(1, "/nonexistent/x.txt")),
             Contains("proposer.corpus (plugin 'proposer-corpus'): speculative.corpus = /nonexistent/x.txt: cannot be read"));
  CHECK_THAT(refusal(corpus(1, "")), Contains("name the text file to draft from"));
}

namespace {

// A proposer that drafts the last token again, and throws on every third call and every release.
class Fragile final : public Proposer {
 public:
  void propose(std::span<DraftRequest> requests) override {
    if (++calls_ % 3 == 0) throw std::runtime_error("lost its index");
    for (DraftRequest& r : requests) r.draft.assign(static_cast<size_t>(r.k) + 2, r.tokens.back());  // 2 too many
  }
  void release(uint64_t) override { throw std::runtime_error("cannot let go"); }

 private:
  int calls_ = 0;
};

const StageRegistry& with_fragile_proposer() {
  static StageRegistry* reg = [] {
    auto* r = new StageRegistry();
    static PluginHost host(*r);
    if (!host.load_all({SEMLINE_PLUGIN_DIR}).empty()) FAIL("a built plugin was refused");
    r->register_plugin(PluginRecord{"fragile", "1.0.0", "a proposer that throws", {}, SEMLINE_ABI_MAJOR, 0},
                       [](Registry& x) {
                         ProposerEntry e;
                         e.name = "fragile";
                         e.description = "drafts the last token again, throws now and then";
                         e.make = [](const ProposerContext&) -> std::unique_ptr<Proposer> { return std::make_unique<Fragile>(); };
                         x.add_proposer(std::move(e));
                       });
    return r;
  }();
  return *reg;
}

}  // namespace

TEST_CASE("what a plugin proposer throws costs its steps their drafts, never a request") {
  Line line(kStories, "max_seqs = 4\n", with_fragile_proposer());
  const std::vector<RequestOptions> requests = story_requests(line, 4, 40);
  const std::vector<Received> plain = run_all(line, seqs(4), requests);
  EngineOptions o = seqs(4);
  o.speculative.proposer = "fragile";
  o.speculative.k = 3;
  EngineCounters counters;
  const std::vector<Received> spec = run_all(line, o, requests, &counters);
  for (size_t i = 0; i < requests.size(); ++i) {
    INFO("request " << i);
    CHECK(spec[i].tokens == plain[i].tokens);
    CHECK(spec[i].finish == FinishReason::Length);
    CHECK(spec[i].stats.draft_tokens <= spec[i].stats.draft_steps * 3);  // cut to k
  }
  CHECK(counters.spec_draft_tokens > 0);
  CHECK(counters.spec_proposer_errors >= 4 + 3);  // every release, and a step in three
}
