// The engine over real lines (stories260K, a synthetic llama): many requests at once give what
// each gives alone, per-request sampling, n > 1 on shared blocks, logprobs, prefix caching,
// preemption, cancellation and bad requests.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <memory>
#include <string>

#include "engine_fixture.h"
#include "core/config/config.h"
#include "core/engine/engine.h"
#include "core/engine/generator.h"
#include "core/graph/graph.h"
#include "core/model/gguf.h"
#include "core/model/synth.h"

using namespace semline;
using namespace semline::engine_test;
using Catch::Matchers::Contains;


TEST_CASE("32 requests at once each give their greedy text alone, token for token (stories260K)") {
  Line line(kStories, "max_seqs = 32\n");
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 32; ++i) prompts.push_back(line.encode(kPrompts[static_cast<size_t>(i) % kPrompts.size()] +
                                                              std::string(static_cast<size_t>(i / 12), '.')));
  const std::vector<Received> solo = alone(line, prompts, 40);
  Engine engine(*line.pipeline, seqs(32));
  Collector c;
  std::vector<uint64_t> ids;
  for (const auto& p : prompts) ids.push_back(engine.submit(request(p, 40), c.fn()));
  int steps = 0, most_running = 0;
  while (engine.step()) {
    ++steps;
    most_running = std::max<int>(most_running, static_cast<int>(engine.counters().running));
  }
  CHECK(most_running == 32);
  for (size_t i = 0; i < ids.size(); ++i) {
    INFO("request " << i << ": " << solo[i].text);
    const Received& r = c.of(ids[i]);
    CHECK(r.tokens == solo[i].tokens);
    CHECK(r.text == solo[i].text);
    CHECK(r.finish == solo[i].finish);
  }
  // Decodes of 32 sequences share steps: far fewer steps than tokens.
  CHECK(steps < 100);
  CHECK(line.pipeline->kv().blocks().held_blocks() == 0);
}

TEST_CASE("the same seed samples the same text alone and among others, greedy and penalties per request") {
  Line line(kStories, "max_seqs = 8\n");
  const auto prompt = line.encode("Once upon a time");
  SamplingParams sampled;
  sampled.temperature = 1.0;
  sampled.top_k = 40;
  sampled.seed = 11;
  const Received solo = alone(line, {prompt}, 40, sampled)[0];
  const Received greedy = alone(line, {prompt}, 40)[0];
  CHECK(solo.text != greedy.text);
  CHECK_THAT(greedy.text, Contains("Lily"));

  Engine engine(*line.pipeline, seqs(8));
  Collector c;
  std::vector<uint64_t> others;
  for (int i = 0; i < 6; ++i) {
    RequestOptions r = request(line.encode(kPrompts[static_cast<size_t>(i) + 1]), 30);
    r.sampling.temperature = 0.9;
    r.sampling.seed = 100 + i;
    others.push_back(engine.submit(r, c.fn()));
  }
  RequestOptions mine = request(prompt, 40);
  mine.sampling = sampled;
  const uint64_t id = engine.submit(mine, c.fn());
  RequestOptions plain = request(prompt, 40);  // the config's greedy chain
  const uint64_t gid = engine.submit(plain, c.fn());
  RequestOptions penalised = request(prompt, 40);
  penalised.sampling.temperature = 0;  // greedy, with a penalty before it
  penalised.sampling.repeat_penalty = 1.5;
  const uint64_t pid = engine.submit(penalised, c.fn());
  engine.run();
  CHECK(c.of(id).text == solo.text);
  CHECK(c.of(gid).text == greedy.text);
  CHECK(c.of(pid).text != greedy.text);
  CHECK(engine.samplers().chain_for(penalised.sampling) == std::vector<std::string>{"repetition_penalty", "greedy"});
  CHECK(engine.samplers().chain_for(mine.sampling).back() == "draw");
}

TEST_CASE("n > 1: choices share the prompt's blocks and draw with their own seeds") {
  Line line(kStories, "max_seqs = 8\n");
  // A prompt of 3 full blocks and a bit (block_tokens 16).
  const auto prompt = line.encode("Once upon a time, there was a little girl named Lily. She loved to play outside in the "
                                  "park with her friends and her dog. One day, they saw a big tree with red apples on "
                                  "it, and Lily wanted one.");
  REQUIRE(prompt.size() > 48);
  Engine engine(*line.pipeline, seqs(8));
  Collector c;
  RequestOptions r = request(prompt, 24);
  r.n = 4;
  r.sampling.temperature = 1.0;
  r.sampling.seed = 5;
  const uint64_t id = engine.submit(r, c.fn());
  engine.run();
  const int32_t shared = static_cast<int32_t>((prompt.size() - 1) / 16 * 16);
  std::set<std::string> texts;
  for (int32_t i = 0; i < 4; ++i) {
    INFO("choice " << i);
    const Received& got = c.of(id, i);
    CHECK(got.finish == FinishReason::Length);
    CHECK(got.tokens.size() == 24);
    CHECK(got.stats.n_cached == (i == 0 ? 0 : shared));
    texts.insert(got.text);
  }
  CHECK(texts.size() == 4);
  // Choice i draws as a request of its own with seed 5 + i would.
  SamplingParams third = r.sampling;
  third.seed = 7;
  CHECK(alone(line, {prompt}, 24, third)[0].text == c.of(id, 2).text);
}

TEST_CASE("logprobs are the model's log-softmax: the greedy token is the most likely, the top ones in order") {
  Line line(kStories);
  const auto prompt = line.encode("Once upon a time");
  Engine engine(*line.pipeline);
  Collector c;
  RequestOptions r = request(prompt, 8);
  r.logprobs = 3;
  const uint64_t id = engine.submit(r, c.fn());
  engine.run();
  const Received& got = c.of(id);
  REQUIRE(got.logprobs.size() == 8);
  // The first token's against the line's own logits after the prompt.
  const int32_t seq = line.pipeline->kv().new_sequence();
  const std::span<const float> logits = prefill(*line.pipeline, seq, prompt);
  double mx = -INFINITY, sum = 0;
  for (float l : logits) mx = std::max(mx, static_cast<double>(l));
  for (float l : logits) sum += std::exp(l - mx);
  const double lse = mx + std::log(sum);
  line.pipeline->kv().free_sequence(seq);
  CHECK(got.logprobs[0].logprob == Approx(logits[static_cast<size_t>(got.tokens[0])] - lse).margin(1e-5));
  for (size_t i = 0; i < got.logprobs.size(); ++i) {
    const TokenLogprob& lp = got.logprobs[i];
    CHECK(lp.token == got.tokens[i]);
    REQUIRE(lp.top.size() == 3);
    CHECK(lp.top[0].first == lp.token);  // greedy takes the most likely
    CHECK(lp.top[0].second == lp.logprob);
    CHECK(lp.top[0].second >= lp.top[1].second);
    CHECK(lp.top[1].second >= lp.top[2].second);
    CHECK(lp.logprob <= 0);
  }
}

TEST_CASE("a repeated prompt is served from the prefix cache with the same text") {
  Line line(kStories);
  const auto prompt = line.encode("Once upon a time, there was a little girl named Lily. She loved to play outside in "
                                  "the park.");
  const auto first = alone(line, {prompt}, 20)[0];
  const auto second = alone(line, {prompt}, 20)[0];
  CHECK(first.stats.n_cached == 0);
  CHECK(second.stats.n_cached == static_cast<int32_t>((prompt.size() - 1) / 16 * 16));
  CHECK(second.tokens == first.tokens);
  Line off(kStories, "[kv_cache]\nprefix_caching = false\n");
  alone(off, {prompt}, 4);
  CHECK(alone(off, {prompt}, 4)[0].stats.n_cached == 0);
}

TEST_CASE("a pool too small for every request at once preempts and recomputes: the same texts") {
  // 24 blocks of 16 positions: 8 requests of ~40 tokens growing to ~100 cannot all hold theirs.
  Line line(kStories, "max_seqs = 8\n[kv_cache]\nblocks = 24\nprefix_caching = false\n");
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; ++i) prompts.push_back(line.encode(kPrompts[static_cast<size_t>(i)] + ", and then"));
  const std::vector<Received> solo = alone(line, prompts, 64);
  Engine engine(*line.pipeline, seqs(8));
  Collector c;
  std::vector<uint64_t> ids;
  for (const auto& p : prompts) {
    RequestOptions r = request(p, 64);
    r.ignore_eos = true;
    ids.push_back(engine.submit(r, c.fn()));
  }
  engine.run();
  CHECK(engine.counters().preemptions > 0);
  int preempted = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    INFO("request " << i);
    const Received& r = c.of(ids[i]);
    CHECK(r.finish == FinishReason::Length);
    REQUIRE(r.tokens.size() == 64);
    // Alone it may stop at the end of its story; batched it was told to ignore that.
    const size_t same = std::min(solo[i].tokens.size(), r.tokens.size());
    CHECK(std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + static_cast<std::ptrdiff_t>(same)) ==
          std::vector<int32_t>(solo[i].tokens.begin(), solo[i].tokens.begin() + static_cast<std::ptrdiff_t>(same)));
    preempted += r.stats.preemptions;
  }
  CHECK(preempted == engine.counters().preemptions);
  CHECK(line.pipeline->kv().blocks().held_blocks() == 0);
}

TEST_CASE("cancelling frees a request's blocks at the next step, stops, limits and eos end choices") {
  Line line(kStories, "max_seqs = 4\n");
  Engine engine(*line.pipeline, seqs(4));
  Collector c;
  RequestOptions long_one = request(line.encode("Once upon a time"), 200);
  long_one.ignore_eos = true;
  const uint64_t cancelled = engine.submit(long_one, c.fn());
  RequestOptions stopping = request(line.encode("Once upon a time"), 100);
  stopping.stop = {"Lily"};
  const uint64_t stopped = engine.submit(stopping, c.fn());
  const uint64_t limited = engine.submit(request(line.encode("The little dog"), 5), c.fn());
  for (int i = 0; i < 10; ++i) engine.step();
  CHECK(line.pipeline->kv().blocks().held_blocks() > 0);
  engine.cancel(cancelled);
  engine.step();
  CHECK(c.of(cancelled).finish == FinishReason::Cancelled);
  CHECK(c.of(cancelled).tokens.size() == 10);  // one token per step, then cancelled before the 11th
  engine.run();
  CHECK(line.pipeline->kv().blocks().held_blocks() == 0);
  CHECK(c.of(stopped).finish == FinishReason::StopString);
  CHECK(c.of(stopped).text == ", there was a little girl named ");
  CHECK(c.of(limited).finish == FinishReason::Length);
  CHECK(c.of(limited).tokens.size() == 5);
  // End of sequence (made certain by a bias: stories260K's stories run on): counted, not in the text.
  SamplingParams to_eos;
  to_eos.logit_bias = {{line.pipeline->tokenizer().eos(), 100.0}};
  const Received ended = alone(line, {line.encode("Once upon a time")}, 50, to_eos)[0];
  CHECK(ended.finish == FinishReason::Eos);
  CHECK(ended.tokens.empty());
  CHECK(ended.text.empty());
  CHECK(ended.stats.n_generated == 1);
}

TEST_CASE("a logit bias per request forces or bans a token") {
  Line line(kStories);
  const auto prompt = line.encode("Once upon a time");
  const Received greedy = alone(line, {prompt}, 6)[0];
  SamplingParams ban;
  ban.logit_bias = {{greedy.tokens[0], -100.0}};
  CHECK(alone(line, {prompt}, 6, ban)[0].tokens[0] != greedy.tokens[0]);
  SamplingParams force;
  force.logit_bias = {{400, 100.0}};
  const Received forced = alone(line, {prompt}, 3, force)[0];
  CHECK(forced.tokens == std::vector<int32_t>{400, 400, 400});
}

TEST_CASE("bad requests are refused with one line naming the value") {
  Line line(kStories);
  Engine engine(*line.pipeline);
  auto refusal = [&](RequestOptions r) {
    try {
      engine.submit(std::move(r), {});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const auto prompt = line.encode("Hello");
  CHECK(refusal(request({}, 4)) == "the prompt is empty: nothing to continue from");
  CHECK(refusal(request({1, 512}, 4)) == "prompt token 512 is outside the vocabulary (0..511)");
  CHECK_THAT(refusal(request(std::vector<int32_t>(256, 1), 4)),
             Contains("the prompt has 256 tokens and the context holds 256, leaving no room to generate"));
  CHECK(refusal(request(prompt, -2)) == "max_tokens = -2: expected 0 or more (-1: up to the context)");
  RequestOptions many = request(prompt, 4);
  many.n = 0;
  CHECK(refusal(many) == "n = 0: expected 1..128 choices");
  RequestOptions bad_p = request(prompt, 4);
  bad_p.sampling.top_p = 1.5;
  CHECK_THAT(refusal(bad_p), Contains("sampler top_p: top_p = 1.5 is out of range; expected a number in 0.0..1.0"));
  RequestOptions bad_bias = request(prompt, 4);
  bad_bias.sampling.logit_bias = {{600, 1.0}};
  CHECK_THAT(refusal(bad_bias), Contains("sampler.logit_bias.any (plugin 'samplers'): logit_bias: token 600 is outside "
                                         "the vocabulary (0..511)"));
  CHECK_FALSE(engine.busy());
}

TEST_CASE("a synthetic llama: 16 requests at once give their solo greedy tokens") {
  TempDir dir;
  const std::string path = dir.tiny(3);
  {
    Line line(path, "max_seqs = 16\n");
    std::vector<std::vector<int32_t>> prompts;
    for (int32_t i = 0; i < 16; ++i) prompts.push_back({1, 10 + i, 20 + 3 * i, 7, 99 - i});
    const std::vector<Received> solo = alone(line, prompts, 24);
    Engine engine(*line.pipeline, seqs(16));
    Collector c;
    std::vector<uint64_t> ids;
    for (const auto& p : prompts) ids.push_back(engine.submit(request(p, 24), c.fn()));
    engine.run();
    for (size_t i = 0; i < ids.size(); ++i) {
      INFO("request " << i);
      CHECK(c.of(ids[i]).tokens == solo[i].tokens);
    }
  }
}
