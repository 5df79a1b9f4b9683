// The registry with plugins registered in-process: lookups, checks of malformed entries,
// all-or-nothing registration, duplicate keys and preferences, and the exception boundary.
#include "core/host/registry.h"

#include <functional>
#include <type_traits>

#include "host/fixtures.h"
#include "host/plugins/select.h"

using namespace semline;
using host_test::error_of;
using Catch::Matchers::Contains;

namespace {

using RegisterFn = void (*)(Registry&);

PluginRecord record(std::string name) { return PluginRecord{std::move(name), "1.0.0", "test plugin", {}, 1, 0}; }

template <class Better = test_plugins::Never>
StageEntry sampler(std::string variant) {
  return test_plugins::select_entry<Better>(std::move(variant), "test sampler");
}

// A model with one metadata key, enough for a template's read_hparams.
class OneKeyModel final : public ModelView {
 public:
  explicit OneKeyModel(bool has_key) : has_key_(has_key) {
    value_.type = MetaType::U32;
    value_.u = 8;
    value_.i = 8;
  }
  const MetaValue* meta(std::string_view key) const override {
    return has_key_ && key == "tiny.embedding_length" ? &value_ : nullptr;
  }
  const Tensor* weight(std::string_view) const override { return nullptr; }
  std::string path() const override { return "tiny.gguf"; }
  std::vector<std::string_view> meta_keys() const override {
    return has_key_ ? std::vector<std::string_view>{"tiny.embedding_length"} : std::vector<std::string_view>{};
  }
  std::vector<std::string_view> weight_names() const override { return {}; }

 private:
  bool has_key_;
  MetaValue value_;
};

StationSpec station(std::string name, StageKind kind, std::string variant) {
  return StationSpec{std::move(name), kind, std::move(variant), {{"weight", "{L}.weight", {}, false}}};
}

ArchTemplate tiny_arch() {
  return {
      .name = "tiny",
      .description = "a one-sublayer test family",
      .embedding = station("token_embd", StageKind::Embedding, "lookup"),
      .block = {{station("attn_norm", StageKind::Norm, "rms"), station("attn", StageKind::Attention, "dense")}},
      .output_norm = station("output_norm", StageKind::Norm, "rms"),
      .head = station("output", StageKind::Head, "dense"),
      .read_hparams =
          [](const ModelView& m) {
            const MetaValue* v = m.meta("tiny.embedding_length");
            if (!v) throw Error(m.path() + ": missing key tiny.embedding_length");
            HParams hp;
            hp.arch = "tiny";
            hp.n_embd = v->i;
            return hp;
          },
  };
}

BackendEntry absent_backend() {
  BackendEntry b;
  b.name = "absent";
  b.description = "a device this machine does not have";
  b.probe = [] { return std::vector<std::string>{"no such device"}; };
  b.create = [](const Params&, const LogFn&) -> std::unique_ptr<Backend> { throw Error("device lost"); };
  return b;
}

// An entry after one edit, registered: the malformed-entry cases differ only in the edit.
template <class Entry, class Edit>
std::function<void(Registry&)> edited(Entry entry, Edit edit) {
  edit(entry);
  return [entry](Registry& r) {
    if constexpr (std::is_same_v<Entry, StageEntry>) r.add_stage(entry);
    if constexpr (std::is_same_v<Entry, ArchTemplate>) r.add_arch(entry);
    if constexpr (std::is_same_v<Entry, BackendEntry>) r.add_backend(entry);
  };
}

}  // namespace

TEST_CASE("registered entries are found, listed in key order and carry their origin") {
  StageRegistry reg;
  reg.register_plugin(record("p"), [](Registry& r) {
    r.add_stage(sampler("zeta"));
    r.add_stage(sampler<test_plugins::LowerId>("alpha"));
    r.add_backend(absent_backend());
    r.add_arch(tiny_arch());
  });

  REQUIRE(reg.plugins().size() == 1);
  CHECK(reg.plugins()[0].name == "p");
  CHECK(stage_key_string(StageKind::Attention, "flash", "cpu") == "attention.flash.cpu");

  const auto all = reg.stages();
  REQUIRE(all.size() == 2);
  CHECK(all[0]->entry.variant == "alpha");
  CHECK(all[1]->entry.variant == "zeta");
  CHECK(reg.stages(StageKind::Sampler).size() == 2);
  CHECK(reg.stages(StageKind::Norm).empty());

  const RegisteredStage* alpha = reg.find(StageKind::Sampler, "alpha", "any");
  REQUIRE(alpha);
  CHECK(alpha->plugin == "p");
  CHECK(reg.find(StageKind::Sampler, "alpha", "cpu") == nullptr);
  CHECK(reg.find(StageKind::Norm, "alpha", "any") == nullptr);

  // The stored factory is the plugin's: lowest id wins.
  auto s = alpha->entry.make_sampler(StageContext{});
  Candidates c{{{7, 0.5f, 0}, {3, 0.1f, 0}, {9, 2.0f, 0}}};
  s->apply(c, {});
  CHECK(c.selected == 1);

  REQUIRE(reg.find_backend("absent"));
  CHECK(reg.backends().size() == 1);
  CHECK(reg.find_backend("absent")->entry.probe() == std::vector<std::string>{"no such device"});
  CHECK(reg.find_backend("cpu") == nullptr);

  const RegisteredArch* arch = reg.find_arch("tiny");
  REQUIRE(arch);
  CHECK(reg.archs().size() == 1);
  CHECK(arch->entry.read_hparams(OneKeyModel(true)).n_embd == 8);
}

TEST_CASE("what a plugin throws from an entry comes out as one semline::Error naming key and plugin") {
  StageRegistry reg;
  reg.register_plugin(record("p"), [](Registry& r) {
    StageEntry e = sampler("fragile");
    e.make_sampler = [](const StageContext&) -> std::unique_ptr<Sampler> {
      throw std::runtime_error("bad\nstate");
    };
    e.supports = [](const StageContext&) -> std::vector<std::string> { throw 42; };
    r.add_stage(std::move(e));
    r.add_backend(absent_backend());
    r.add_arch(tiny_arch());
  });
  const RegisteredStage* s = reg.find(StageKind::Sampler, "fragile", "any");
  REQUIRE(s);
  CHECK(error_of([&] { s->entry.make_sampler(StageContext{}); }) ==
        "sampler.fragile.any (plugin 'p'): bad state");
  CHECK_THAT(error_of([&] { s->entry.supports(StageContext{}); }),
             Contains("sampler.fragile.any (plugin 'p'): threw something that is not a std::exception"));
  CHECK(error_of([&] { reg.find_backend("absent")->entry.create(Params{}, LogFn{}); }) ==
        "backend.absent (plugin 'p'): device lost");
  CHECK(error_of([&] { reg.find_arch("tiny")->entry.read_hparams(OneKeyModel(false)); }) ==
        "arch.tiny (plugin 'p'): tiny.gguf: missing key tiny.embedding_length");
}

namespace {

// Plugin objects whose every method throws: the host must name the entry and the plugin at each.
class ThrowingStage final : public Stage {
 public:
  void forward(const Tensor&, const Tensor&, const Step&) override { throw std::runtime_error("forward broke"); }
  StageCost cost(const Batch&) const override { throw std::runtime_error("cost broke"); }
  int32_t kv_window() const override { throw 7; }
};

class ThrowingTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view, bool, bool) const override { throw std::runtime_error("encode broke"); }
  std::string token_bytes(int32_t) const override { throw std::runtime_error("token_bytes broke"); }
  std::string decode(std::span<const int32_t>) const override { throw std::runtime_error("decode broke"); }
  std::string piece(int32_t) const override { throw std::runtime_error("piece broke"); }
  int32_t n_vocab() const override { throw std::runtime_error("n_vocab broke"); }
  int32_t bos() const override { throw std::runtime_error("bos broke"); }
  int32_t eos() const override { throw std::runtime_error("eos broke"); }
  bool is_eog(int32_t) const override { throw std::runtime_error("is_eog broke"); }
};

class ThrowingSampler final : public Sampler {
 public:
  void apply(Candidates&, std::span<const int32_t>) override { throw std::runtime_error("apply broke"); }
  void reset() override { throw std::runtime_error("reset broke"); }
};

// Samplers that break the Candidates contract without throwing.
class Emptying final : public Sampler {
 public:
  void apply(Candidates& c, std::span<const int32_t>) override { c.items.clear(); }
};
class SelectingOutside final : public Sampler {
 public:
  void apply(Candidates& c, std::span<const int32_t>) override { c.selected = static_cast<int32_t>(c.items.size()); }
};

class NoStream final : public Stream {
 public:
  void synchronize() override {}
};

}  // namespace

TEST_CASE("every call into a plugin's stages, tokenizers and samplers is guarded and names the plugin") {
  StageRegistry reg;
  reg.register_plugin(record("p"), [](Registry& r) {
    StageEntry stage;
    stage.kind = StageKind::Norm;
    stage.variant = "broken";
    stage.backend = "cpu";
    stage.description = "throws everywhere";
    stage.make_stage = [](const StageContext&) -> std::unique_ptr<Stage> { return std::make_unique<ThrowingStage>(); };
    r.add_stage(std::move(stage));
    StageEntry tok;
    tok.kind = StageKind::Tokenizer;
    tok.variant = "broken";
    tok.backend = "any";
    tok.description = "throws everywhere";
    tok.make_tokenizer = [](const StageContext&) -> std::unique_ptr<Tokenizer> {
      return std::make_unique<ThrowingTokenizer>();
    };
    r.add_stage(std::move(tok));
    StageEntry smp = sampler("broken");
    smp.make_sampler = [](const StageContext&) -> std::unique_ptr<Sampler> { return std::make_unique<ThrowingSampler>(); };
    r.add_stage(std::move(smp));
    StageEntry empty = sampler("emptying");
    empty.make_sampler = [](const StageContext&) -> std::unique_ptr<Sampler> { return std::make_unique<Emptying>(); };
    r.add_stage(std::move(empty));
    StageEntry outside = sampler("outside");
    outside.make_sampler = [](const StageContext&) -> std::unique_ptr<Sampler> {
      return std::make_unique<SelectingOutside>();
    };
    r.add_stage(std::move(outside));
    StageEntry nothing = sampler("nothing");
    nothing.make_sampler = [](const StageContext&) -> std::unique_ptr<Sampler> { return nullptr; };
    r.add_stage(std::move(nothing));
  });

  auto stage = reg.find(StageKind::Norm, "broken", "cpu")->entry.make_stage(StageContext{});
  Batch batch;
  NoStream stream;
  const Tensor t = make_tensor(DType::F32, {1});
  CHECK(error_of([&] { stage->forward(t, t, Step{batch, stream}); }) == "norm.broken.cpu (plugin 'p'): forward broke");
  CHECK(error_of([&] { stage->cost(batch); }) == "norm.broken.cpu (plugin 'p'): cost broke");
  CHECK(error_of([&] { stage->kv_window(); }) ==
        "norm.broken.cpu (plugin 'p'): threw something that is not a std::exception");

  auto tok = reg.find(StageKind::Tokenizer, "broken", "any")->entry.make_tokenizer(StageContext{});
  const std::string tp = "tokenizer.broken.any (plugin 'p'): ";
  CHECK(error_of([&] { tok->encode("x", true, false); }) == tp + "encode broke");
  CHECK(error_of([&] { tok->token_bytes(1); }) == tp + "token_bytes broke");
  CHECK(error_of([&] { tok->decode({}); }) == tp + "decode broke");
  CHECK(error_of([&] { tok->piece(1); }) == tp + "piece broke");
  CHECK(error_of([&] { tok->n_vocab(); }) == tp + "n_vocab broke");
  CHECK(error_of([&] { tok->bos(); }) == tp + "bos broke");
  CHECK(error_of([&] { tok->eos(); }) == tp + "eos broke");
  CHECK(error_of([&] { tok->is_eog(0); }) == tp + "is_eog broke");

  auto smp = reg.find(StageKind::Sampler, "broken", "any")->entry.make_sampler(StageContext{});
  Candidates c{{{0, 1.0f, 0}, {1, 2.0f, 0}}};
  CHECK(error_of([&] { smp->apply(c, {}); }) == "sampler.broken.any (plugin 'p'): apply broke");
  CHECK(error_of([&] { smp->reset(); }) == "sampler.broken.any (plugin 'p'): reset broke");

  // The Candidates contract: a member that empties the set or selects outside it is named.
  auto emptying = reg.find(StageKind::Sampler, "emptying", "any")->entry.make_sampler(StageContext{});
  CHECK_THAT(error_of([&] { emptying->apply(c, {}); }),
             Contains("sampler.emptying.any (plugin 'p'): left no candidate"));
  Candidates d{{{0, 1.0f, 0}, {1, 2.0f, 0}}};
  auto outside = reg.find(StageKind::Sampler, "outside", "any")->entry.make_sampler(StageContext{});
  CHECK(error_of([&] { outside->apply(d, {}); }) == "sampler.outside.any (plugin 'p'): selected item 2 of 2 candidates");
  CHECK(error_of([&] { reg.find(StageKind::Sampler, "nothing", "any")->entry.make_sampler(StageContext{}); }) ==
        "sampler.nothing.any (plugin 'p'): the factory returned nothing");
}

TEST_CASE("a malformed entry refuses the whole plugin") {
  struct Case {
    const char* what;
    std::function<void(Registry&)> fn;
    const char* message;
  };
  const Case cases[] = {
      {"empty variant", [](Registry& r) { r.add_stage(sampler("")); },
       "sampler variant '' is not a valid name"},
      {"dotted variant", [](Registry& r) { r.add_stage(sampler("a.b")); }, "variant 'a.b' is not a valid name"},
      {"factory of the wrong kind",
       edited(sampler("s"), [](StageEntry& e) {
         e.make_sampler = nullptr;
         e.make_stage = [](const StageContext&) -> std::unique_ptr<Stage> { return nullptr; };
       }),
       "sampler.s.any: a sampler entry sets exactly one factory, make_sampler (it sets make_stage)"},
      {"no factory",
       edited(sampler("s"), [](StageEntry& e) { e.make_sampler = nullptr; }),
       "make_sampler (it sets none)"},
      {"two factories",
       edited(sampler("s"), [](StageEntry& e) {
         e.make_tokenizer = [](const StageContext&) -> std::unique_ptr<Tokenizer> { return nullptr; };
       }),
       "(it sets make_tokenizer, make_sampler)"},
      {"host station on a backend",
       edited(sampler("s"), [](StageEntry& e) { e.backend = "cpu"; }),
       "sampler entries run on the host; their backend is \"any\""},
      {"empty description",
       edited(sampler("s"), [](StageEntry& e) { e.description.clear(); }),
       "sampler.s.any: description is empty"},
      {"param default of the wrong type",
       edited(sampler("s"), [](StageEntry& e) { e.params = {{"p", ParamType::Float, int64_t{1}, "a probability", {}, {}, {}}}; }),
       "parameter 'p' is declared float but its default 1 is int"},
      {"param default out of range",
       edited(sampler("s"), [](StageEntry& e) { e.params = {{"p", ParamType::Float, 1.5, "a probability", 0.0, 1.0, {}}}; }),
       "parameter 'p': default 1.5 is outside its range"},
      {"param without doc",
       edited(sampler("s"), [](StageEntry& e) { e.params = {{"k", ParamType::Int, int64_t{4}, "", {}, {}, {}}}; }),
       "the doc of parameter 'k' is empty"},
      {"param default not among choices",
       edited(sampler("s"), [](StageEntry& e) {
         e.params = {{"mode", ParamType::String, std::string("fast"), "how", {}, {}, {"slow", "exact"}}};
       }),
       "default 'fast' is not one of its choices"},
      {"same key twice", [](Registry& r) {
         r.add_stage(sampler("s"));
         r.add_stage(sampler("s"));
       },
       "registers sampler.s.any twice"},
      {"backend without create",
       edited(absent_backend(), [](BackendEntry& b) { b.create = nullptr; }),
       "backend 'absent': has no create function"},
      {"template without read_hparams",
       edited(tiny_arch(), [](ArchTemplate& a) { a.read_hparams = nullptr; }),
       "architecture template 'tiny': has no read_hparams function"},
      {"template station of the wrong kind",
       edited(tiny_arch(), [](ArchTemplate& a) { a.head.kind = StageKind::Norm; }),
       "station 'output' has kind norm; this place of the line takes head"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    StageRegistry reg;
    // The valid entry registered first must not survive its plugin's refusal.
    static std::function<void(Registry&)> current;
    current = c.fn;
    const std::string message = error_of([&] {
      reg.register_plugin(record("bad"), [](Registry& r) {
        r.add_stage(sampler("valid"));
        current(r);
      });
    });
    CHECK_THAT(message, Contains("plugin 'bad'") && Contains(c.message));
    CHECK(reg.stages().empty());
    CHECK(reg.backends().empty());
    CHECK(reg.archs().empty());
    CHECK(reg.plugins().empty());
    reg.register_plugin(record("good"), [](Registry& r) { r.add_stage(sampler("valid")); });
    CHECK(reg.find(StageKind::Sampler, "valid", "any")->plugin == "good");
  }
}

TEST_CASE("a plugin whose registration throws leaves no entry behind") {
  StageRegistry reg;
  CHECK(error_of([&] {
          reg.register_plugin(record("t"), [](Registry& r) {
            r.add_stage(sampler("orphan"));
            throw std::runtime_error("out of coffee");
          });
        }) == "plugin 't' failed to register its entries: out of coffee");
  CHECK_THAT(error_of([&] {
               reg.register_plugin(record("t"), [](Registry& r) {
                 r.add_stage(sampler("orphan"));
                 throw 7;
               });
             }),
             Contains("it threw something that is not a std::exception"));
  CHECK(reg.stages().empty());
  CHECK(reg.plugins().empty());
  reg.register_plugin(record("t"), [](Registry& r) { r.add_stage(sampler("orphan")); });
  CHECK(reg.find(StageKind::Sampler, "orphan", "any"));
}

TEST_CASE("a plugin name is registered once") {
  StageRegistry reg;
  reg.register_plugin(record("p"), [](Registry& r) { r.add_stage(sampler("a")); });
  CHECK_THAT(error_of([&] { reg.register_plugin(record("p"), [](Registry& r) { r.add_stage(sampler("b")); }); }),
             Contains("plugin 'p' is already loaded"));
  CHECK_THAT(error_of([&] { reg.register_plugin(record("two words"), [](Registry&) {}); }),
             Contains("plugin name 'two words' is not a valid name"));
  CHECK(reg.plugins().size() == 1);
  CHECK(reg.find(StageKind::Sampler, "b", "any") == nullptr);
}

TEST_CASE("a duplicate key stays with the first plugin unless a preference names the winner") {
  const RegisterFn first_a = [](Registry& r) { r.add_stage(sampler("first")); };
  const RegisterFn first_and_more = [](Registry& r) {
    r.add_stage(sampler("first"));
    r.add_stage(sampler<test_plugins::HigherLogit>("max_logit"));
    r.add_backend(absent_backend());
  };
  const auto register_a_then_b = [&](StageRegistry& reg) {
    reg.register_plugin(record("a"), first_a);
    reg.register_plugin(record("b"), first_and_more);
  };
  // The duplicate stays with a; b's other entries are kept.
  const auto check_a_keeps_first = [](const StageRegistry& reg) {
    CHECK(reg.find(StageKind::Sampler, "first", "any")->plugin == "a");
    CHECK(reg.find(StageKind::Sampler, "max_logit", "any")->plugin == "b");
    CHECK(reg.find_backend("absent")->plugin == "b");
  };

  SECTION("no preference: only the second plugin's duplicate entry is dropped, with one line") {
    StageRegistry reg;
    host_test::LogCapture log;
    register_a_then_b(reg);
    check_a_keeps_first(reg);
    CHECK(reg.plugins().size() == 2);
    CHECK_THAT(log.text(), Contains("warning sampler.first.any: registered by plugin 'a' and by plugin 'b'; the first "
                                    "loaded keeps it, the other's entry is dropped (the rest of both plugins stays); to "
                                    "choose, set [runtime.prefer] \"sampler.first.any\" = \"a\" or \"b\""));
    const std::string text = log.text();
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  }
  SECTION("the holder is preferred: the newcomer's duplicate is dropped, its other entries kept") {
    StageRegistry reg;
    reg.set_preferences({{"sampler.first.any", "a"}});
    host_test::LogCapture log;
    register_a_then_b(reg);
    check_a_keeps_first(reg);
    CHECK_THAT(log.text(), Contains("info sampler.first.any: the entry of plugin 'b' is dropped"));
    reg.check_preferences();
  }
  SECTION("the newcomer is preferred: it takes the key") {
    StageRegistry reg;
    reg.set_preferences({{"sampler.first.any", "b"}});
    reg.register_plugin(record("a"), first_a);
    const RegisteredStage* before = reg.find(StageKind::Sampler, "first", "any");
    reg.register_plugin(record("b"), first_and_more);
    CHECK(reg.find(StageKind::Sampler, "first", "any") == before);
    CHECK(before->plugin == "b");
    reg.check_preferences();
  }
  SECTION("a third plugin is preferred: it takes the key when it loads") {
    StageRegistry reg;
    reg.set_preferences({{"sampler.first.any", "c"}});
    register_a_then_b(reg);
    CHECK(reg.find(StageKind::Sampler, "first", "any")->plugin == "a");
    CHECK(error_of([&] { reg.check_preferences(); }) ==
          "[runtime.prefer] \"sampler.first.any\" = \"c\": plugin 'c' does not register this key; it is registered "
          "by a, b");
    reg.register_plugin(record("c"), first_a);
    CHECK(reg.find(StageKind::Sampler, "first", "any")->plugin == "c");
    reg.check_preferences();
  }
  SECTION("backends clash by name") {
    StageRegistry reg;
    reg.register_plugin(record("a"), [](Registry& r) { r.add_backend(absent_backend()); });
    host_test::LogCapture log;
    reg.register_plugin(record("b"), first_and_more);
    CHECK(reg.find_backend("absent")->plugin == "a");
    CHECK_THAT(log.text(), Contains("[runtime.prefer] \"backend.absent\" = \"a\" or \"b\""));
  }
}

TEST_CASE("a preference for a key nobody registers is reported") {
  StageRegistry reg;
  reg.set_preferences({{"sampler.frist.any", "a"}});
  reg.register_plugin(record("a"), [](Registry& r) { r.add_stage(sampler("first")); });
  CHECK_THAT(error_of([&] { reg.check_preferences(); }),
             Contains("[runtime.prefer] \"sampler.frist.any\": no loaded plugin registers this key") &&
                 Contains("sampler.first.any"));
}

TEST_CASE("Registry::log reaches spdlog prefixed with the plugin name") {
  host_test::LogCapture log;
  StageRegistry reg;
  reg.register_plugin(record("chatty"), [](Registry& r) { r.log(LogLevel::Warn, "running low on entries"); });
  CHECK_THAT(log.text(), Contains("warning [chatty] running low on entries"));
}

namespace {

// Drafts the sequence's last token again, or throws.
class EchoProposer final : public Proposer {
 public:
  explicit EchoProposer(bool fail) : fail_(fail) {}
  void propose(std::span<DraftRequest> requests) override {
    if (fail_) throw std::runtime_error("index\nlost");
    for (DraftRequest& r : requests) r.draft.assign(static_cast<size_t>(r.k), r.tokens.back());
  }
  void release(uint64_t) override {}

 private:
  bool fail_;
};

ProposerEntry echo_proposer(std::string name, std::vector<ParamSpec> params = {}) {
  ProposerEntry e;
  e.name = std::move(name);
  e.description = "drafts the last token again";
  e.params = std::move(params);
  e.make = [](const ProposerContext& ctx) -> std::unique_ptr<Proposer> {
    return std::make_unique<EchoProposer>(ctx.params.values.count("fail") && ctx.params.get_bool("fail"));
  };
  return e;
}

}  // namespace

TEST_CASE("proposers are registered by name, guarded, and refused with the engine's own names or keys") {
  StageRegistry reg;
  reg.register_plugin(record("p"), [](Registry& r) {
    r.add_proposer(echo_proposer("echo", {{"fail", ParamType::Bool, false, "throw from propose", {}, {}, {}}}));
  });
  const RegisteredProposer* echo = reg.find_proposer("echo");
  REQUIRE(echo);
  CHECK(echo->plugin == "p");
  CHECK(reg.proposers().size() == 1);
  ProposerContext ctx;
  ctx.params.values["fail"] = true;
  auto failing = echo->entry.make(ctx);
  std::vector<int32_t> tokens = {1, 2, 3};
  std::vector<DraftRequest> requests = {DraftRequest{7, tokens, 2, {}}};
  CHECK(error_of([&] { failing->propose(requests); }) == "proposer.echo (plugin 'p'): index lost");
  ctx.params.values["fail"] = false;
  echo->entry.make(ctx)->propose(requests);
  CHECK(requests[0].draft == std::vector<int32_t>{3, 3});

  // register_plugin takes a plain function: the entry to refuse waits in a static.
  static ProposerEntry pending;
  auto refusal = [](ProposerEntry e) {
    pending = std::move(e);
    StageRegistry r;
    return error_of([&] { r.register_plugin(record("bad"), [](Registry& x) { x.add_proposer(pending); }); });
  };
  CHECK_THAT(refusal(echo_proposer("ngram")), Contains("proposer 'ngram': the name is the engine's own proposer's"));
  CHECK_THAT(refusal(echo_proposer("echo", {{"k", ParamType::Int, int64_t{1}, "clash", {}, {}, {}}})),
             Contains("proposer 'echo': parameter 'k' is a key of [speculative] already"));
  ProposerEntry no_make = echo_proposer("echo");
  no_make.make = nullptr;
  CHECK_THAT(refusal(no_make), Contains("proposer 'echo': has no make function"));
}
