// The engine over a line with recurrent layers (a synthetic Mamba, a Jamba hybrid): each
// sequence's state is its own row, so many requests at once, preempted ones recomputed and n > 1
// choices give what each gives alone; a cached prefix continues from the state kept at its end;
// what a recurrent state cannot do (go back: speculative decoding, a cut sequence) is refused by
// name.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "common/compare.h"
#include "common/pipeline_logits.h"
#include "engine_fixture.h"

using namespace semline;
using namespace semline::engine_test;
using Catch::Matchers::Contains;

namespace {

std::string tiny_mamba(const TempDir& dir, uint64_t seed) {
  SynthSpec s = synth_preset("tiny");
  s.arch = "mamba";
  s.seed = seed;
  const std::string out = dir.file("mamba-" + std::to_string(seed) + ".gguf");
  synth_write(s, out);
  return out;
}

double worst(const std::vector<std::vector<float>>& got, const std::vector<std::vector<float>>& want) {
  REQUIRE(got.size() == want.size());
  double w = 0;
  for (size_t i = 0; i < got.size(); ++i) w = std::max(w, testing::rel_err(got[i], want[i]));
  return w;
}

// A prompt of n tokens: the same for the same salt, another for another.
std::vector<int32_t> long_prompt(int32_t n, int32_t salt) {
  std::vector<int32_t> p = {1};
  for (int32_t i = 1; i < n; ++i) p.push_back(2 + (salt * 37 + i * 13 + i * i) % 500);
  return p;
}

std::vector<int32_t> joined(std::vector<int32_t> head, size_t keep, const std::vector<int32_t>& tail) {
  head.resize(keep);
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

std::vector<std::vector<int32_t>> prompts_of(int32_t n) {
  std::vector<std::vector<int32_t>> prompts;
  for (int32_t i = 0; i < n; ++i) prompts.push_back({1, 10 + i, 20 + 3 * i, 7, 99 - i, 5 + (i % 3) * 40});
  return prompts;
}

// One step of sequence seq alone with the given tokens, from where it stands; the logits of its
// last token.
std::vector<float> step_alone(Pipeline& p, int32_t seq, const std::vector<int32_t>& tokens) {
  p.kv().reserve(seq, static_cast<int32_t>(tokens.size()));
  StepArrays a;
  const int32_t past = p.kv().n_past(seq);
  for (size_t i = 0; i < tokens.size(); ++i) {
    a.tokens.push_back(tokens[i]);
    a.positions.push_back(past + static_cast<int32_t>(i));
    a.seq.push_back(0);
  }
  a.seqs.push_back(p.kv().view(seq));
  a.output_rows.push_back(static_cast<int32_t>(tokens.size()) - 1);
  const std::span<const float> l = p.forward(a.batch());
  std::vector<float> logits(l.begin(), l.end());
  p.kv().advance(seq, tokens);
  return logits;
}

}  // namespace

TEST_CASE("a Mamba line: 16 requests at once give their solo greedy tokens") {
  TempDir dir;
  Line line(tiny_mamba(dir, 4), "max_seqs = 16\n");
  CHECK(line.pipeline->recurrent());
  const auto prompts = prompts_of(16);
  const std::vector<Received> solo = alone(line, prompts, 24);
  Engine engine(*line.pipeline, seqs(16));
  Collector c;
  std::vector<uint64_t> ids;
  for (const auto& p : prompts) ids.push_back(engine.submit(request(p, 24), c.fn()));
  // And the first prompt again: computed anew, since a prompt within one block keeps no state.
  ids.push_back(engine.submit(request(prompts[0], 24), c.fn()));
  int most_running = 0;
  while (engine.step()) most_running = std::max<int>(most_running, static_cast<int>(engine.counters().running));
  CHECK(most_running == 16);
  for (size_t i = 0; i < ids.size(); ++i) {
    INFO("request " << i);
    CHECK(c.of(ids[i]).tokens == solo[i % 16].tokens);
    CHECK(c.of(ids[i]).stats.n_cached == 0);
  }
  CHECK(engine.counters().prefix_hit_tokens == 0);
}

TEST_CASE("a Jamba line (attention and Mamba layers): 8 requests at once give their solo greedy tokens") {
  TempDir dir;
  SynthSpec spec = synth_preset("tiny");
  spec.arch = "jamba";
  spec.layers = 4;
  spec.experts = 4;
  spec.experts_used = 2;
  spec.seed = 3;
  const std::string path = dir.file("jamba.gguf");
  synth_write(spec, path);
  Line line(path, "max_seqs = 8\n");
  CHECK(line.pipeline->recurrent());
  // Keys and values for the attention layers only: 2 of 4 hold memory.
  CHECK(line.pipeline->kv().layer(0).k.buffer == nullptr);
  CHECK(line.pipeline->kv().layer(1).k.buffer != nullptr);
  const auto prompts = prompts_of(8);
  const std::vector<Received> solo = alone(line, prompts, 20);
  Engine engine(*line.pipeline, seqs(8));
  Collector c;
  std::vector<uint64_t> ids;
  for (const auto& p : prompts) ids.push_back(engine.submit(request(p, 20), c.fn()));
  engine.run();
  for (size_t i = 0; i < ids.size(); ++i) {
    INFO("request " << i);
    CHECK(c.of(ids[i]).tokens == solo[i].tokens);
  }
  CHECK(line.pipeline->kv().blocks().held_blocks() == 0);

  // A long prompt twice: the second takes the attention layers' cached blocks and the Mamba
  // layers' state at their end, and gives the text of a line that keeps nothing.
  Line fresh(path, "max_seqs = 8\n[kv_cache]\nprefix_caching = false\n");
  const std::vector<int32_t> p = long_prompt(36, 8);
  const std::vector<Received> want = alone(fresh, {p}, 16);
  const uint64_t first = engine.submit(request(p, 16), c.fn());
  engine.run();
  const uint64_t second = engine.submit(request(p, 16), c.fn());
  engine.run();
  CHECK(c.of(first).stats.n_cached == 0);
  CHECK(c.of(second).stats.n_cached == 32);
  CHECK(c.of(first).tokens == want[0].tokens);
  CHECK(c.of(second).tokens == want[0].tokens);
}

TEST_CASE("a Mamba line: preempted sequences start their state over and give the same tokens") {
  TempDir dir;
  // 8 blocks of 16 positions for 6 sequences growing to 6 + 40 tokens: some must give theirs back.
  Line line(tiny_mamba(dir, 5), "max_seqs = 6\n[kv_cache]\nblocks = 8\n");
  const auto prompts = prompts_of(6);
  const std::vector<Received> solo = alone(line, prompts, 40);
  Engine engine(*line.pipeline, seqs(6));
  Collector c;
  std::vector<uint64_t> ids;
  for (const auto& p : prompts) {
    RequestOptions r = request(p, 40);
    r.ignore_eos = true;
    ids.push_back(engine.submit(r, c.fn()));
  }
  engine.run();
  CHECK(engine.counters().preemptions > 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    INFO("request " << i);
    const Received& r = c.of(ids[i]);
    REQUIRE(r.tokens.size() == 40);
    const size_t same = std::min(solo[i].tokens.size(), r.tokens.size());
    CHECK(std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + static_cast<std::ptrdiff_t>(same)) ==
          std::vector<int32_t>(solo[i].tokens.begin(), solo[i].tokens.begin() + static_cast<std::ptrdiff_t>(same)));
  }
}

TEST_CASE("a Mamba line: n > 1 choices continue from the first one's state and draw with their own seeds") {
  TempDir dir;
  const std::string model = tiny_mamba(dir, 6);
  Line line(model, "max_seqs = 4\n");
  Engine engine(*line.pipeline, seqs(4));
  Collector c;
  RequestOptions r = request(long_prompt(40, 1), 16);
  r.n = 3;
  r.ignore_eos = true;
  r.sampling.temperature = 1.0;
  r.sampling.seed = 9;
  const uint64_t id = engine.submit(r, c.fn());
  engine.run();
  std::set<std::vector<int32_t>> distinct;
  for (int32_t i = 0; i < 3; ++i) {
    INFO("choice " << i);
    CHECK(c.of(id, i).tokens.size() == 16);
    // The first computes the prompt and keeps its state at 32 (two blocks of 16); the others take it.
    CHECK(c.of(id, i).stats.n_cached == (i == 0 ? 0 : 32));
    distinct.insert(c.of(id, i).tokens);
  }
  CHECK(distinct.size() == 3);
  CHECK(engine.counters().prompt_tokens == 40 + 2 * 8);
  // The third choice as a request of its own with its seed, on a line that keeps nothing.
  Line fresh(model, "max_seqs = 1\n[kv_cache]\nprefix_caching = false\n");
  SamplingParams third = r.sampling;
  third.seed = 11;
  Engine one(*fresh.pipeline, seqs(1));
  Collector c1;
  RequestOptions r1 = request(r.prompt, 16);
  r1.ignore_eos = true;
  r1.sampling = third;
  const uint64_t id1 = one.submit(r1, c1.fn());
  one.run();
  CHECK(c1.of(id1).stats.n_cached == 0);
  CHECK(c1.of(id1).tokens == c.of(id, 2).tokens);
}

TEST_CASE("a Mamba line: a repeated prompt continues from the state kept at its last whole block") {
  TempDir dir;
  const std::string model = tiny_mamba(dir, 10);
  Line line(model, "max_seqs = 4\n");
  CHECK(line.pipeline->kv().options().prefix_caching);
  Line fresh(model, "max_seqs = 4\n[kv_cache]\nprefix_caching = false\n");
  const std::vector<int32_t> p = long_prompt(40, 2);
  const std::vector<std::vector<int32_t>> prompts = {
      p,
      p,                                          // the same: from its state at 32
      joined(p, 35, long_prompt(9, 3)),           // the same first 35 tokens: from 32
      joined(p, 20, long_prompt(20, 4)),          // the same first block only: no state kept at 16
      std::vector<int32_t>(p.begin(), p.begin() + 32),  // ends where the state is kept, but its last token's
                                                        // logits need it computed: none kept at 16
  };
  const std::vector<Received> want = alone(fresh, prompts, 12);
  Engine engine(*line.pipeline, seqs(4));
  Collector c;
  std::vector<uint64_t> ids = {engine.submit(request(prompts[0], 12), c.fn())};
  engine.run();
  for (size_t i = 1; i < prompts.size(); ++i) ids.push_back(engine.submit(request(prompts[i], 12), c.fn()));
  engine.run();
  const std::vector<int32_t> cached = {0, 32, 32, 0, 0};
  for (size_t i = 0; i < prompts.size(); ++i) {
    INFO("prompt " << i);
    CHECK(c.of(ids[i]).stats.n_cached == cached[i]);
    CHECK(c.of(ids[i]).tokens == want[i].tokens);
  }
  CHECK(engine.counters().prefix_hit_tokens == 32 + 32);
  CHECK(line.pipeline->kv().blocks().held_blocks() == 0);
}

TEST_CASE("a Mamba line keeps as many states as it has sequences, the least recently used dropped first") {
  TempDir dir;
  const std::string model = tiny_mamba(dir, 11);
  Line line(model, "max_seqs = 2\n");
  Engine engine(*line.pipeline, seqs(2));
  Collector c;
  auto n_cached = [&](const std::vector<int32_t>& prompt) {
    const uint64_t id = engine.submit(request(prompt, 4), c.fn());
    engine.run();
    return c.of(id).stats.n_cached;
  };
  const std::vector<int32_t> a = long_prompt(20, 5), b = long_prompt(20, 6), d = long_prompt(20, 7);
  CHECK(n_cached(a) == 0);
  CHECK(n_cached(b) == 0);
  CHECK(n_cached(a) == 16);  // a is now the most recently used
  CHECK(n_cached(d) == 0);   // b's state goes
  CHECK(n_cached(b) == 0);   // and comes back, a's goes
  CHECK(n_cached(d) == 16);
  CHECK(n_cached(a) == 0);
}

TEST_CASE("a Mamba line refuses what would take its state back") {
  TempDir dir;
  Line line(tiny_mamba(dir, 7));
  SECTION("speculative decoding") {
    EngineOptions o = seqs(1);
    o.speculative.proposer = "ngram";
    CHECK_THROWS_WITH(Engine(*line.pipeline, o),
                      Contains("recurrent layers (mamba)") && Contains("use proposer = \"none\""));
  }
  SECTION("a step that continues a sequence from before its state") {
    Pipeline& p = *line.pipeline;
    const int32_t seq = p.kv().new_sequence();
    auto feed = [&](const std::vector<int32_t>& tokens) { return step_alone(p, seq, tokens); };
    feed({1, 5, 9, 13});
    const std::vector<int32_t> kept = {1, 5};
    REQUIRE(p.kv().blocks().truncate(seq, kept) == 2);
    CHECK_THROWS_WITH(feed({21}), Contains("its recurrent state stands at 4") && Contains("cannot go back"));
    // From the start it is a new state: the same logits as a fresh sequence.
    REQUIRE(p.kv().blocks().truncate(seq, {}) == 0);
    feed({1, 5});
    p.kv().free_sequence(seq);
  }
}

TEST_CASE("a Mamba line's logits do not depend on how its tokens are stepped or batched with others") {
  TempDir dir;
  Line line(tiny_mamba(dir, 8), "max_seqs = 2\n");
  const std::vector<int32_t> a = {1, 40, 41, 42, 300, 7, 7, 90, 12}, b = {1, 3, 250, 4, 8};
  const auto alone_a = testing::all_logits(*line.pipeline, a, 1);
  const auto alone_b = testing::all_logits(*line.pipeline, b, 1);
  CHECK(worst(testing::all_logits(*line.pipeline, a, 4), alone_a) <= 1e-6);
  // Both sequences in every step, a's tokens two at a time, b's one at a time.
  Pipeline& p = *line.pipeline;
  const int32_t sa = p.kv().new_sequence(), sb = p.kv().new_sequence();
  size_t ia = 0, ib = 0;
  StepArrays arr;
  while (ia < a.size() || ib < b.size()) {
    arr.clear();
    std::vector<std::pair<int32_t, std::vector<int32_t>>> parts;
    if (ia < a.size()) parts.push_back({sa, std::vector<int32_t>(a.begin() + ia, a.begin() + std::min(ia + 2, a.size()))});
    if (ib < b.size()) parts.push_back({sb, {b[ib]}});
    std::vector<std::pair<const std::vector<std::vector<float>>*, size_t>> want;
    for (const auto& [s, toks] : parts) {
      p.kv().reserve(s, static_cast<int32_t>(toks.size()));
      const int32_t past = p.kv().n_past(s);
      for (size_t i = 0; i < toks.size(); ++i) {
        arr.tokens.push_back(toks[i]);
        arr.positions.push_back(past + static_cast<int32_t>(i));
        arr.seq.push_back(static_cast<int32_t>(arr.seqs.size()));
      }
      arr.seqs.push_back(p.kv().view(s));
      arr.output_rows.push_back(static_cast<int32_t>(arr.tokens.size()) - 1);
      want.push_back({s == sa ? &alone_a : &alone_b, static_cast<size_t>(past) + toks.size() - 1});
    }
    const std::span<const float> got = p.forward(arr.batch());
    const size_t v = static_cast<size_t>(p.hp().n_vocab);
    for (size_t o = 0; o < want.size(); ++o) {
      const std::vector<float> row(got.begin() + o * v, got.begin() + (o + 1) * v);
      INFO("output " << o << " at position " << want[o].second);
      CHECK(worst({row}, {(*want[o].first)[want[o].second]}) <= 1e-6);
    }
    for (const auto& [s, toks] : parts) p.kv().advance(s, toks);
    ia = std::min(ia + 2, a.size());
    if (ib < b.size()) ++ib;
  }
  p.kv().free_sequence(sa);
  p.kv().free_sequence(sb);
}

TEST_CASE("a Mamba line: a saved state put back continues as the state did") {
  TempDir dir;
  Line line(tiny_mamba(dir, 9));
  Pipeline& p = *line.pipeline;
  const int32_t seq = p.kv().new_sequence();
  auto feed = [&](const std::vector<int32_t>& tokens) { return step_alone(p, seq, tokens); };
  const std::vector<int32_t> context = {1, 30, 31, 32, 400, 9};
  feed(context);
  const StatePool::Snapshot saved = p.state().save(p.kv().view(seq).slot);
  CHECK(saved.position == 6);
  const std::vector<float> first = feed({77, 78});
  REQUIRE(p.kv().blocks().truncate(seq, context) == 6);
  p.state().restore(p.kv().view(seq).slot, saved);
  CHECK(feed({77, 78}) == first);
  p.kv().free_sequence(seq);
}
