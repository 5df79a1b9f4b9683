// The out-of-tree example plugin (examples/sampler-typical), built from the same source beside
// the tests: it loads, describes itself, and samples the locally typical set.
#include <cmath>

#include "core/host/plugin_host.h"
#include "host/fixtures.h"

using namespace semline;
using host_test::error_of;
using Catch::Matchers::Contains;

namespace {

const RegisteredStage& typical_entry(StageRegistry& reg, PluginHost& host) {
  host.load(std::filesystem::path(SEMLINE_TEST_PLUGIN_DIR) / "libsemline-test-example-typical.so");
  const RegisteredStage* s = reg.find(StageKind::Sampler, "typical", "any");
  REQUIRE(s);
  return *s;
}

std::unique_ptr<Sampler> make(const RegisteredStage& s, double typical_p) {
  StageContext ctx;
  ctx.params.values["typical_p"] = typical_p;
  return s.entry.make_sampler(ctx);
}

}  // namespace

TEST_CASE("the example plugin registers sampler.typical.any with its parameter") {
  StageRegistry reg;
  PluginHost host(reg);
  const RegisteredStage& s = typical_entry(reg, host);
  CHECK(s.plugin == "sampler-typical");
  REQUIRE(s.entry.params.size() == 1);
  const ParamSpec& p = s.entry.params[0];
  CHECK(p.name == "typical_p");
  CHECK(p.type == ParamType::Float);
  CHECK(std::get<double>(p.default_value) == 0.95);
  CHECK(p.min == 0.0);
  CHECK(p.max == 1.0);
  CHECK_FALSE(p.doc.empty());
}

TEST_CASE("typical sampling keeps the tokens whose information is closest to the entropy") {
  StageRegistry reg;
  PluginHost host(reg);
  const RegisteredStage& s = typical_entry(reg, host);

  // p = {0.4, 0.3, 0.3}: entropy 1.089 nats; -log 0.4 = 0.916 is farther from it than
  // -log 0.3 = 1.204, so the two 0.3 tokens are the typical ones and the likeliest is dropped.
  auto candidates = [] {
    return Candidates{{{7, float(std::log(0.4)), 0}, {8, float(std::log(0.3)), 0}, {9, float(std::log(0.3)), 0}}};
  };
  Candidates c = candidates();
  make(s, 0.5)->apply(c, {});
  REQUIRE(c.items.size() == 2);
  CHECK(c.items[0].id == 8);
  CHECK(c.items[1].id == 9);
  CHECK(c.items[0].p == Approx(0.5));
  CHECK(c.items[1].p == Approx(0.5));
  CHECK(c.sorted);

  // Mass 0.6 of the two typical tokens is short of 0.7: the third joins.
  c = candidates();
  make(s, 0.7)->apply(c, {});
  REQUIRE(c.items.size() == 3);
  CHECK(c.items[0].id == 7);  // sorted by logit again
  CHECK(c.items[0].p == Approx(0.4));

  // typical_p = 0 keeps the single most typical token; 1 keeps everything untouched.
  c = candidates();
  make(s, 0.0)->apply(c, {});
  REQUIRE(c.items.size() == 1);
  CHECK(c.items[0].id == 8);
  c = candidates();
  make(s, 1.0)->apply(c, {});
  CHECK(c.items.size() == 3);
  CHECK_FALSE(c.sorted);
}

TEST_CASE("typical sampling clears an earlier selection and ignores NaN logits") {
  StageRegistry reg;
  PluginHost host(reg);
  const RegisteredStage& s = typical_entry(reg, host);
  Candidates c = {{{1, float(std::log(0.4)), 0}, {2, std::nanf(""), 0}, {3, float(std::log(0.3)), 0},
                   {4, float(std::log(0.3)), 0}}};
  c.selected = 0;
  make(s, 0.5)->apply(c, {});
  CHECK(c.selected == -1);
  REQUIRE(c.items.size() == 2);
  CHECK(c.items[0].id == 3);
  CHECK(c.items[1].id == 4);
}

TEST_CASE("a failure inside the example's factory names the entry and plugin") {
  StageRegistry reg;
  PluginHost host(reg);
  const RegisteredStage& s = typical_entry(reg, host);
  // The graph fills in every declared parameter; without it the plugin's lookup throws.
  CHECK_THAT(error_of([&] { s.entry.make_sampler(StageContext{}); }),
             Contains("sampler.typical.any (plugin 'sampler-typical'): "));
}
