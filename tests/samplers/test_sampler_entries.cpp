// What the sampler plugin registers: keys, schemas that agree across the chain, working factories.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include <semline/plugin.h>

#include "plugins/samplers/entries.h"
#include "plugins/samplers/samplers.h"

using namespace semline;

extern "C" const semline_plugin_info* semline_plugin_entry(uint32_t host_abi);

namespace {

const std::set<std::string> kVariants = {"greedy",           "temperature",       "top_k",
                                         "top_p",            "min_p",             "repetition_penalty",
                                         "frequency_penalty", "presence_penalty", "logit_bias", "content_filter",
                                         "draw"};

bool type_matches(ParamType t, const ParamValue& v) {
  switch (t) {
    case ParamType::Bool: return std::holds_alternative<bool>(v);
    case ParamType::Int: return std::holds_alternative<int64_t>(v);
    case ParamType::Float: return std::holds_alternative<double>(v);
    case ParamType::String: return std::holds_alternative<std::string>(v);
    case ParamType::StringList: return std::holds_alternative<std::vector<std::string>>(v);
    case ParamType::IntList: return std::holds_alternative<std::vector<int64_t>>(v);
    case ParamType::FloatList: return std::holds_alternative<std::vector<double>>(v);
  }
  return false;
}

double numeric(const ParamValue& v) {
  return std::holds_alternative<int64_t>(v) ? static_cast<double>(std::get<int64_t>(v)) : std::get<double>(v);
}

StageContext defaults_of(const StageEntry& e) {
  StageContext ctx;
  for (const ParamSpec& p : e.params) ctx.params.values[p.name] = p.default_value;
  return ctx;
}

const StageEntry& find(const std::vector<StageEntry>& entries, const std::string& variant) {
  for (const StageEntry& e : entries)
    if (e.variant == variant) return e;
  FAIL("no entry " << variant);
  return entries.front();
}

Candidates hundred() {
  Candidates c;
  for (int32_t i = 0; i < 100; ++i) c.items.push_back({i, static_cast<float>((i * 37) % 100) / 10.0f, 0.0f});
  return c;
}

struct Collector : Registry {
  std::vector<StageEntry> stages;
  void add_stage(StageEntry e) override { stages.push_back(std::move(e)); }
  void add_backend(BackendEntry) override { FAIL("the sampler plugin registers no backend"); }
  void add_arch(ArchTemplate) override { FAIL("the sampler plugin registers no architecture"); }
  void add_proposer(ProposerEntry) override { FAIL("the sampler plugin registers no proposer"); }
  void add_comm(CommEntry) override { FAIL("the sampler plugin registers no communicator"); }
  void log(LogLevel, std::string_view) override {}
};

}  // namespace

TEST_CASE("every sampler is a host entry with a description and a factory") {
  std::vector<StageEntry> entries = samplers::sampler_entries();
  std::set<std::string> variants;
  for (const StageEntry& e : entries) {
    INFO(e.variant);
    CHECK(variants.insert(e.variant).second);
    CHECK(e.kind == StageKind::Sampler);
    CHECK(e.backend == "any");
    CHECK(!e.description.empty());
    CHECK(e.description.find('\n') == std::string::npos);
    CHECK(e.make_sampler);
    CHECK(!e.make_stage);
    CHECK(!e.make_tokenizer);
  }
  CHECK(variants == kVariants);
}

TEST_CASE("parameter names mean one thing across the chain and defaults are valid") {
  std::map<std::string, const ParamSpec*> seen;
  for (const StageEntry& e : samplers::sampler_entries())
    for (const ParamSpec& p : e.params) {
      INFO(e.variant << "." << p.name);
      CHECK(!p.doc.empty());
      CHECK(type_matches(p.type, p.default_value));
      if (p.type == ParamType::Int || p.type == ParamType::Float) {
        if (p.min) CHECK(numeric(p.default_value) >= *p.min);
        if (p.max) CHECK(numeric(p.default_value) <= *p.max);
      }
      auto [it, fresh] = seen.emplace(p.name, &p);
      if (!fresh) {
        // Shared by several members: only the penalties' window, with one type and default.
        CHECK(p.name == "repeat_last_n");
        CHECK(it->second->type == p.type);
        CHECK(it->second->default_value == p.default_value);
      }
    }
  for (const char* name : {"temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n",
                           "frequency_penalty", "presence_penalty", "seed"})
    CHECK(seen.count(name));
}

TEST_CASE("factories build samplers from their defaults") {
  std::vector<StageEntry> entries = samplers::sampler_entries();

  Candidates c = hundred();
  find(entries, "top_k").make_sampler(defaults_of(find(entries, "top_k")))->apply(c, {});
  CHECK(c.items.size() == 40);

  Candidates t = hundred();
  find(entries, "temperature").make_sampler(defaults_of(find(entries, "temperature")))->apply(t, {});
  CHECK(t.items[1].logit == Approx(hundred().items[1].logit / 0.8));

  Candidates r = hundred();
  find(entries, "repetition_penalty").make_sampler(defaults_of(find(entries, "repetition_penalty")))
      ->apply(r, std::vector<int32_t>{1});
  CHECK(r.items[1].logit == hundred().items[1].logit);  // 1.0 by default, as in llama.cpp: off

  // Penalties at their default 0 change nothing.
  for (const char* name : {"frequency_penalty", "presence_penalty"}) {
    Candidates p = hundred();
    find(entries, name).make_sampler(defaults_of(find(entries, name)))->apply(p, std::vector<int32_t>{1, 2, 3});
    CHECK(p.items[1].logit == hundred().items[1].logit);
  }

  StageContext seeded = defaults_of(find(entries, "draw"));
  auto from_entry = find(entries, "draw").make_sampler(seeded);
  samplers::Draw direct(42);
  for (int i = 0; i < 16; ++i) {
    Candidates a = hundred(), b = hundred();
    from_entry->apply(a, {});
    direct.apply(b, {});
    CHECK(a.items[a.selected].id == b.items[b.selected].id);
  }

  Candidates g = hundred();
  find(entries, "greedy").make_sampler(defaults_of(find(entries, "greedy")))->apply(g, {});
  CHECK(g.items[g.selected].logit == Approx(9.9f));
}

TEST_CASE("the plugin entry point describes the plugin and registers every sampler") {
  const semline_plugin_info* info = semline_plugin_entry(SEMLINE_ABI_MAJOR);
  REQUIRE(info);
  CHECK(info->abi_major == SEMLINE_ABI_MAJOR);
  CHECK(info->abi_minor == SEMLINE_ABI_MINOR);
  CHECK(std::string(info->name) == "samplers");
  CHECK(!std::string(info->description).empty());
  Collector registry;
  info->register_all(registry);
  std::set<std::string> variants;
  for (const StageEntry& e : registry.stages) variants.insert(e.variant);
  CHECK(variants == kVariants);
}
