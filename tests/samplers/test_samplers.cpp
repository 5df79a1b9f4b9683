// The sampler math on hand-made candidates, against values computed here in double precision.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "plugins/samplers/samplers.h"

using namespace semline;
using namespace semline::samplers;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Candidates with ids 0..n-1 in id order, as the engine hands them over.
Candidates make(const std::vector<float>& logits) {
  Candidates c;
  for (size_t i = 0; i < logits.size(); ++i) c.items.push_back({static_cast<int32_t>(i), logits[i], 0.0f});
  return c;
}

// The id a selecting sampler picks from make(logits), -1 when it selects nothing.
template <class S>
int32_t selected_of(S& sampler, const std::vector<float>& logits) {
  Candidates c = make(logits);
  sampler.apply(c, {});
  return c.selected < 0 ? -1 : c.items[c.selected].id;
}

std::vector<double> ref_softmax(const std::vector<double>& logits) {
  double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (double l : logits) sum += std::exp(l - top);
  std::vector<double> p;
  for (double l : logits) p.push_back(std::exp(l - top) / sum);
  return p;
}

// Logits whose softmax is exactly `probs`.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::set<int32_t> ids(const Candidates& c) {
  std::set<int32_t> s;
  for (const Candidate& x : c.items) s.insert(x.id);
  return s;
}

float logit_of(const Candidates& c, int32_t id) {
  for (const Candidate& x : c.items)
    if (x.id == id) return x.logit;
  FAIL("id " << id << " is not among the candidates");
  return 0;
}

void check_sane(const Candidates& c) {
  for (size_t i = 0; i < c.items.size(); ++i) {
    CHECK(!std::isnan(c.items[i].p));
    if (c.sorted && i) CHECK(!ranks_before(c.items[i], c.items[i - 1]));
  }
  CHECK(c.selected >= -1);
  CHECK(c.selected < static_cast<int32_t>(c.items.size()));
}

const std::vector<float> kLogits = {0.5f, 2.0f, -1.0f, 1.25f, 3.0f, -0.75f, 2.0f, 0.0f};

}  // namespace

TEST_CASE("softmax matches double precision and sorts by logit") {
  Candidates c = make(kLogits);
  softmax(c);
  std::vector<double> ref = ref_softmax(std::vector<double>(kLogits.begin(), kLogits.end()));
  REQUIRE(c.sorted);
  REQUIRE(c.items.size() == kLogits.size());
  double sum = 0;
  for (const Candidate& x : c.items) {
    CHECK(x.p == Approx(ref[x.id]).epsilon(1e-6));
    sum += x.p;
  }
  CHECK(sum == Approx(1.0).epsilon(1e-6));
  std::vector<int32_t> order;
  for (const Candidate& x : c.items) order.push_back(x.id);
  CHECK(order == std::vector<int32_t>{4, 1, 6, 3, 0, 7, 5, 2});  // equal logits: lower id first
}

TEST_CASE("softmax of infinite and NaN logits gives no NaN") {
  Candidates c = make({1.0f, kInf, kNaN, kInf, -kInf});
  softmax(c);
  check_sane(c);
  CHECK(c.items[0].id == 1);
  CHECK(c.items[0].p == 0.5f);
  CHECK(c.items[1].id == 3);
  CHECK(c.items[1].p == 0.5f);
  CHECK(c.items.back().id == 2);  // NaN after everything, -inf included
  for (size_t i = 2; i < c.items.size(); ++i) CHECK(c.items[i].p == 0.0f);

  Candidates all_low = make({-kInf, kNaN, -kInf});
  softmax(all_low);
  for (const Candidate& x : all_low.items) CHECK(x.p == Approx(1.0 / 3));

  Candidates with_nan = make({0.0f, kNaN, 1.0f});
  softmax(with_nan);
  std::vector<double> ref = ref_softmax({0.0, 1.0});
  CHECK(with_nan.items[0].p == Approx(ref[1]));
  CHECK(with_nan.items[1].p == Approx(ref[0]));
  CHECK(with_nan.items[2].p == 0.0f);

  Candidates empty;
  softmax(empty);
  CHECK(empty.items.empty());
}

TEST_CASE("greedy selects the highest logit") {
  Greedy g;
  CHECK(selected_of(g, kLogits) == 4);
  CHECK(selected_of(g, {1.0f, 3.0f, 3.0f}) == 1);  // ties: the lowest id
  CHECK(selected_of(g, {kNaN, -2.0f, -1.0f}) == 2);
  CHECK(selected_of(g, {-5.0f}) == 0);
  CHECK(selected_of(g, {}) == -1);
}

TEST_CASE("greedy over a longer row: the first of the best in any lane of its scan, NaN ranked last") {
  Greedy g;
  for (size_t n : {4u, 7u, 37u, 64u})
    for (size_t best = 0; best < n; ++best) {
      INFO("n " << n << ", best at " << best);
      std::vector<float> row(n);
      for (size_t i = 0; i < n; ++i) row[i] = -static_cast<float>((i * 7) % 5);  // 0 and below
      row[best] = 2.0f;
      CHECK(selected_of(g, row) == static_cast<int32_t>(best));
      for (size_t later = best + 1; later < n; ++later) {  // a tie after it, in another lane or the same
        std::vector<float> tie = row;
        tie[later] = 2.0f;
        REQUIRE(selected_of(g, tie) == static_cast<int32_t>(best));
      }
      std::vector<float> nans(n, kNaN);
      nans[best] = -1e30f;
      CHECK(selected_of(g, nans) == static_cast<int32_t>(best));
    }
  CHECK(selected_of(g, std::vector<float>(9, kNaN)) == 0);
  CHECK(selected_of(g, {kNaN, kNaN, kNaN, kNaN, kNaN, -kInf, kNaN, 3.0f, kNaN}) == 7);
  CHECK(selected_of(g, {-kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -1.0f}) == 8);
}

TEST_CASE("temperature divides the logits, zero keeps only the best") {
  Candidates c = make(kLogits);
  Temperature(0.7).apply(c, {});
  for (const Candidate& x : c.items) CHECK(x.logit == Approx(kLogits[x.id] / 0.7).epsilon(1e-6));

  Candidates sorted = make(kLogits);
  sort_candidates(sorted);
  Temperature(2.5).apply(sorted, {});
  CHECK(sorted.sorted);
  check_sane(sorted);

  Candidates zero = make(kLogits);
  zero.selected = 3;
  Temperature(0).apply(zero, {});
  REQUIRE(zero.items.size() == 1);
  CHECK(zero.items[0].id == 4);
  CHECK(zero.items[0].p == 1.0f);
  CHECK(zero.selected == -1);  // a filter clears an earlier selection

  Candidates tiny = make({1.0f, -1.0f, 0.0f});  // to +inf, -inf and 0
  Temperature(1e-300).apply(tiny, {});
  softmax(tiny);
  check_sane(tiny);
  CHECK(tiny.items[0].id == 0);
  CHECK(tiny.items[0].p == 1.0f);

  Candidates empty;
  Temperature(0).apply(empty, {});
  CHECK(empty.items.empty());
  CHECK_THROWS_WITH(Temperature(-0.1), "temperature = -0.1: expected a finite value >= 0");
  CHECK_THROWS_WITH(Temperature(std::nan("")), "temperature = nan: expected a finite value >= 0");
}

TEST_CASE("top_k keeps the k highest logits") {
  Candidates c = make(kLogits);
  TopK(3).apply(c, {});
  CHECK(ids(c) == std::set<int32_t>{4, 1, 6});
  CHECK(c.sorted);
  check_sane(c);

  Candidates one = make(kLogits);
  TopK(1).apply(one, {});
  CHECK(ids(one) == std::set<int32_t>{4});

  Candidates presorted = make(kLogits);
  sort_candidates(presorted);
  TopK(2).apply(presorted, {});
  CHECK(ids(presorted) == std::set<int32_t>{4, 1});

  for (int64_t k : {0, 8, 100}) {
    Candidates all = make(kLogits);
    TopK(k).apply(all, {});
    CHECK(all.items.size() == kLogits.size());
  }
  Candidates empty;
  TopK(5).apply(empty, {});
  CHECK(empty.items.empty());
  CHECK_THROWS_WITH(TopK(-1), "top_k = -1: expected >= 0 (0 keeps all)");
}

TEST_CASE("top_p keeps the smallest prefix reaching p") {
  const std::vector<double> probs = {0.1, 0.4, 0.05, 0.3, 0.15};
  const std::vector<float> logits = logits_of(probs);
  // Expected sizes from the sorted probabilities 0.4, 0.3, 0.15, 0.1, 0.05 and their running totals
  // 0.4, 0.7, 0.85, 0.95, 1.0.
  const std::vector<std::pair<double, size_t>> cases = {
      {0.0, 1}, {0.39, 1}, {0.41, 2}, {0.69, 2}, {0.71, 3}, {0.84, 3}, {0.86, 4}, {0.96, 5}, {1.0, 5}};
  for (auto [p, keep] : cases) {
    INFO("top_p " << p);
    Candidates c = make(logits);
    TopP(p).apply(c, {});
    REQUIRE(c.items.size() == keep);
    const std::vector<int32_t> order = {1, 3, 4, 0, 2};
    for (size_t i = 0; i < keep; ++i) {
      CHECK(c.items[i].id == order[i]);
      CHECK(c.items[i].p == Approx(probs[order[i]]).epsilon(1e-6));
    }
  }
  Candidates one = make({7.0f});
  TopP(0.5).apply(one, {});
  CHECK(one.items.size() == 1);
  Candidates empty;
  TopP(0.5).apply(empty, {});
  CHECK(empty.items.empty());
  CHECK_THROWS_WITH(TopP(1.5), "top_p = 1.5: expected a value in 0..1");
  CHECK_THROWS_WITH(TopP(-0.1), "top_p = -0.1: expected a value in 0..1");
}

TEST_CASE("min_p keeps candidates at least min_p times as likely as the best") {
  std::vector<double> ref = ref_softmax(std::vector<double>(kLogits.begin(), kLogits.end()));
  double top = *std::max_element(ref.begin(), ref.end());
  for (double m : {0.0, 0.05, 0.2, 0.3, 0.5, 0.99, 1.0}) {
    INFO("min_p " << m);
    std::set<int32_t> expected;
    for (size_t i = 0; i < ref.size(); ++i)
      if (ref[i] >= m * top * (1 - 1e-9)) expected.insert(static_cast<int32_t>(i));
    Candidates c = make(kLogits);
    MinP(m).apply(c, {});
    CHECK(ids(c) == expected);
    CHECK(c.sorted);
  }
  Candidates infinite = make({1.0f, kInf, 0.0f, kInf});
  MinP(0.1).apply(infinite, {});
  CHECK(ids(infinite) == std::set<int32_t>{1, 3});
  Candidates empty;
  MinP(0.1).apply(empty, {});
  CHECK(empty.items.empty());
  CHECK_THROWS_WITH(MinP(2.0), "min_p = 2: expected a value in 0..1");
}

TEST_CASE("the repetition penalty divides positive and multiplies negative logits of recent tokens") {
  const std::vector<int32_t> history = {6, 0, 2, 2, 5, 3, 3};
  const double penalty = 1.3;
  Candidates c = make(kLogits);
  sort_candidates(c);
  RepetitionPenalty(penalty, 4).apply(c, history);  // window: 2, 5, 3, 3
  for (int32_t id = 0; id < static_cast<int32_t>(kLogits.size()); ++id) {
    double l = kLogits[id];
    bool recent = id == 2 || id == 5 || id == 3;
    double expected = recent ? (l > 0 ? l / penalty : l * penalty) : l;
    CHECK(logit_of(c, id) == Approx(expected).epsilon(1e-6));
  }
  CHECK(!c.sorted);

  Candidates all = make(kLogits);
  RepetitionPenalty(penalty, -1).apply(all, history);
  CHECK(logit_of(all, 6) == Approx(kLogits[6] / penalty));
  CHECK(logit_of(all, 0) == Approx(kLogits[0] / penalty));
  CHECK(logit_of(all, 2) == Approx(kLogits[2] * penalty));
  CHECK(logit_of(all, 1) == kLogits[1]);
  CHECK(logit_of(all, 7) == kLogits[7]);

  Candidates off = make(kLogits);
  RepetitionPenalty(penalty, 0).apply(off, history);
  Candidates longer = make(kLogits);
  RepetitionPenalty(penalty, 1000).apply(longer, history);
  for (int32_t id = 0; id < 8; ++id) {
    CHECK(logit_of(off, id) == kLogits[id]);
    CHECK(logit_of(longer, id) == logit_of(all, id));
  }
  Candidates empty;
  RepetitionPenalty(penalty, 64).apply(empty, history);
  CHECK(empty.items.empty());
  CHECK_THROWS_WITH(RepetitionPenalty(0.0, 64), "repeat_penalty = 0: expected a finite value > 0 (1 is off)");
  CHECK_THROWS_WITH(RepetitionPenalty(1.1, -2), "repeat_last_n = -2: expected -1 (all), 0 (off) or more");
}

TEST_CASE("frequency and presence penalties subtract count x frequency + presence") {
  const std::vector<int32_t> history = {1, 4, 4, 7, 4, 1, 9};  // 9: not a candidate
  const double freq = 0.4, presence = 0.25;
  Candidates c = make(kLogits);
  CountPenalty(freq, presence, -1).apply(c, history);
  const std::map<int32_t, int> counts = {{1, 2}, {4, 3}, {7, 1}};
  for (int32_t id = 0; id < 8; ++id) {
    int n = counts.count(id) ? counts.at(id) : 0;
    double expected = kLogits[id] - (n * freq + (n > 0 ? presence : 0.0));
    CHECK(logit_of(c, id) == Approx(expected).epsilon(1e-6));
  }
  Candidates windowed = make(kLogits);
  CountPenalty(freq, 0.0, 3).apply(windowed, history);  // window: 4, 1, 9
  CHECK(logit_of(windowed, 4) == Approx(kLogits[4] - freq));
  CHECK(logit_of(windowed, 1) == Approx(kLogits[1] - freq));
  CHECK(logit_of(windowed, 7) == kLogits[7]);

  Candidates no_history = make(kLogits);
  CountPenalty(freq, presence, 64).apply(no_history, {});
  CHECK(logit_of(no_history, 4) == kLogits[4]);
  CHECK_THROWS_WITH(CountPenalty(std::nan(""), 0, 64), "frequency_penalty = nan: expected a finite value (0 is off)");
  CHECK_THROWS_WITH(CountPenalty(0, INFINITY, 64), "presence_penalty = inf: expected a finite value (0 is off)");
}

TEST_CASE("window counts tally the last n tokens") {
  WindowCounts w;
  const std::vector<int32_t> history = {3, 1, 3, 2, 3};
  w.count(history, 4);
  CHECK(w.of(3) == 2);
  CHECK(w.of(1) == 1);
  CHECK(w.of(2) == 1);
  CHECK(w.of(0) == 0);
  w.count(history, 0);
  CHECK(w.of(3) == 0);
  w.count(history, -1);
  CHECK(w.of(3) == 3);
}

TEST_CASE("draw follows the seeded engine and the probabilities") {
  const std::vector<double> probs = {0.1, 0.4, 0.05, 0.3, 0.15};
  const std::vector<float> logits = logits_of(probs);
  // The walk over the probabilities in descending order, in double precision.
  const std::vector<int32_t> order = {1, 3, 4, 0, 2};
  std::mt19937_64 oracle(1234);
  Draw d(1234);
  int compared = 0;
  for (int i = 0; i < 500; ++i) {
    Candidates c = make(logits);
    d.apply(c, {});
    REQUIRE(c.selected >= 0);
    double u = static_cast<double>(oracle() >> 11) * 0x1.0p-53;
    double running = 0, nearest = 1;
    int32_t expected = -1;
    for (int32_t id : order) {
      running += probs[id];
      nearest = std::min(nearest, std::abs(u - running));
      if (expected < 0 && u < running) expected = id;
    }
    if (nearest < 1e-6) continue;  // float probabilities may round across this boundary
    CHECK(c.items[c.selected].id == expected);
    ++compared;
  }
  CHECK(compared > 490);
}

TEST_CASE("draw frequencies approach the probabilities") {
  const std::vector<double> probs = {0.1, 0.4, 0.05, 0.3, 0.15};
  const std::vector<float> logits = logits_of(probs);
  Draw d(7);
  std::vector<int> hits(probs.size());
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    Candidates c = make(logits);
    d.apply(c, {});
    ++hits[c.items[c.selected].id];
  }
  for (size_t id = 0; id < probs.size(); ++id) CHECK(hits[id] / double(n) == Approx(probs[id]).margin(0.015));
}

TEST_CASE("the same seed draws the same sequence, another seed another, reset starts over") {
  auto run = [](Draw& d, int n) {
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) out.push_back(selected_of(d, kLogits));
    return out;
  };
  Draw a(42), b(42), other(43);
  std::vector<int32_t> first = run(a, 64);
  CHECK(run(b, 64) == first);
  CHECK(run(other, 64) != first);
  CHECK(run(a, 64) != first);  // the engine moved on
  a.reset();
  CHECK(run(a, 64) == first);

  Draw one(1);
  CHECK(selected_of(one, {-3.0f}) == 0);
  CHECK(selected_of(one, {}) == -1);

  Candidates all_nan = make({kNaN, kNaN});
  one.apply(all_nan, {});
  check_sane(all_nan);
  CHECK(all_nan.selected >= 0);
}

TEST_CASE("the chain order matters") {
  // Sorted probabilities 0.4, 0.3, 0.2, 0.1.
  const std::vector<float> logits = logits_of({0.2, 0.4, 0.1, 0.3});
  // top_k 2 leaves 0.4 and 0.3, renormalised to 4/7 >= 0.55: one candidate.
  Candidates kp = make(logits);
  TopK(2).apply(kp, {});
  TopP(0.55).apply(kp, {});
  CHECK(ids(kp) == std::set<int32_t>{1});
  CHECK(kp.items[0].p == Approx(4.0 / 7));
  // top_p 0.55 over all four needs 0.4 + 0.3; top_k 2 keeps both.
  Candidates pk = make(logits);
  TopP(0.55).apply(pk, {});
  TopK(2).apply(pk, {});
  CHECK(ids(pk) == std::set<int32_t>{1, 3});

  // Temperature 0.5 squares the probabilities (0.16 : 0.09 : ...), so top_p 0.5 then needs one.
  Candidates tp = make(logits);
  Temperature(0.5).apply(tp, {});
  TopP(0.5).apply(tp, {});
  CHECK(ids(tp) == std::set<int32_t>{1});
  Candidates pt = make(logits);
  TopP(0.5).apply(pt, {});
  Temperature(0.5).apply(pt, {});
  CHECK(ids(pt) == std::set<int32_t>{1, 3});
}

TEST_CASE("a full chain over awkward logits stays sane") {
  std::vector<float> logits(300);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i) * 0.37f) * 8.0f;
  logits[17] = kNaN;
  logits[40] = -kInf;
  logits[99] = 1e30f;
  const std::vector<int32_t> history = {99, 17, 40, 5, 5, 250};
  RepetitionPenalty rep(1.2, 64);
  CountPenalty pen(0.3, 0.2, 64);
  TopK k(50);
  TopP p(0.9);
  MinP m(0.01);
  Temperature t(0.8);
  Draw d(5);
  for (int step = 0; step < 20; ++step) {
    Candidates c = make(logits);
    for (Sampler* s : std::initializer_list<Sampler*>{&rep, &pen, &k, &p, &m, &t, &d}) {
      s->apply(c, history);
      check_sane(c);
    }
    REQUIRE(c.selected >= 0);
    CHECK(c.items[c.selected].id == 99);  // 1e30 stays far above the rest after the penalties
  }
}

namespace {

// A vocabulary of a few byte strings, enough to spell words across tokens.
class FakeTokenizer final : public Tokenizer {
 public:
  explicit FakeTokenizer(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}
  std::vector<int32_t> encode(std::string_view, bool, bool) const override { return {}; }
  std::string token_bytes(int32_t id) const override { return pieces_.at(static_cast<size_t>(id)); }
  std::string decode(std::span<const int32_t>) const override { return ""; }
  std::string piece(int32_t id) const override { return pieces_.at(static_cast<size_t>(id)); }
  int32_t n_vocab() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos() const override { return -1; }
  int32_t eos() const override { return -1; }
  bool is_eog(int32_t) const override { return false; }

 private:
  std::vector<std::string> pieces_;
};

// The ids a filter keeps of the whole vocabulary after `history`.
std::vector<int32_t> kept(ContentFilter& f, const FakeTokenizer& tok, std::vector<int32_t> history) {
  Candidates c;
  for (int32_t i = 0; i < tok.n_vocab(); ++i) c.items.push_back({i, static_cast<float>(i), 0.0f});
  c.selected = 0;
  f.apply(c, history);
  CHECK(c.selected == -1);
  std::vector<int32_t> ids;
  for (const Candidate& x : c.items) ids.push_back(x.id);
  return ids;
}

}  // namespace

TEST_CASE("content filter: strings and expressions judged on the text before a candidate and its bytes") {
  //                          0     1     2    3    4       5      6   7
  const FakeTokenizer tok({"Li", "ly", "l", "y", " Lily", "xLi", " ", ""});
  using Ids = std::vector<int32_t>;
  SECTION("a banned string: completed across tokens, or inside one; never by what came before alone") {
    ContentFilter f(&tok, BanList{{"Lily"}, {}, {}, false, 64});
    CHECK(kept(f, tok, {6}) == Ids{0, 1, 2, 3, 5, 6, 7});       // " Lily" holds it whole
    CHECK(kept(f, tok, {6, 0}) == Ids{0, 2, 3, 5, 6, 7});       // "Li" + "ly"
    CHECK(kept(f, tok, {6, 0, 2}) == Ids{0, 1, 2, 5, 6, 7});    // "Lil" + "y"
    CHECK(kept(f, tok, {4}) == Ids{0, 1, 2, 3, 5, 6, 7});       // "Lily" already written bans nothing more
  }
  SECTION("case folded") {
    ContentFilter f(&tok, BanList{{"LILY"}, {}, {}, true, 64});
    CHECK(kept(f, tok, {5}) == Ids{0, 2, 3, 5, 6, 7});
  }
  SECTION("a regular expression, with the byte before a candidate as context for \\b") {
    ContentFilter f(&tok, BanList{{}, {"\\bLily\\b"}, {}, false, 64});
    CHECK(kept(f, tok, {6, 0}) == Ids{0, 2, 3, 5, 6, 7});       // " Li" + "ly"
    CHECK(kept(f, tok, {5}) == Ids{0, 1, 2, 3, 5, 6, 7});       // "xLi" + "ly": no word starts at that L
    CHECK(kept(f, tok, {6}) == Ids{0, 1, 2, 3, 5, 6, 7});       // " " + " Lily"
    CHECK(kept(f, tok, {}) == Ids{0, 1, 2, 3, 5, 6, 7});        // no history: " Lily" alone
  }
  SECTION("a match that could still be under way is followed from where it started") {
    ContentFilter f(&tok, BanList{{}, {"L[il]+y"}, {}, false, 64});
    CHECK(kept(f, tok, {0, 2, 2, 2}) == Ids{0, 2, 5, 6, 7});        // "Lilll" + "ly" or "y"
    CHECK(kept(f, tok, {0, 6}) == Ids{0, 1, 2, 3, 5, 6, 7});        // "Li " ends it: only " Lily" banned
  }
  SECTION("ids, and what is refused") {
    ContentFilter f(&tok, BanList{{}, {}, {2, 3}, false, 64});
    CHECK(kept(f, tok, {}) == Ids{0, 1, 4, 5, 6, 7});
    ContentFilter ids_only(nullptr, BanList{{}, {}, {1}, false, 64});
    Candidates c = make({0.0f, 1.0f, 2.0f});
    ids_only.apply(c, {});
    CHECK(c.items.size() == 2);
    CHECK_THROWS_WITH(ContentFilter(nullptr, BanList{{"x"}, {}, {}, false, 64}),
                      Catch::Contains("ban and ban_regex need the line's tokenizer"));
    CHECK_THROWS_WITH(ContentFilter(&tok, BanList{{}, {}, {8}, false, 64}),
                      "ban_ids: token 8 is outside the vocabulary (0..7)");
    CHECK_THROWS_WITH(ContentFilter(&tok, BanList{{}, {"a("}, {}, false, 64}),
                      Catch::Contains("ban_regex[0] = \"a(\" is not a valid regular expression (Perl syntax)"));
    CHECK_THROWS_WITH(ContentFilter(&tok, BanList{{"ok", ""}, {}, {}, false, 64}), Catch::Contains("ban[1] is empty"));
  }
}
