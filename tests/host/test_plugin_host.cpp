// Loading plugin libraries: a good one, every kind of refusal (each followed by a good load, so
// the host is shown to stay usable), duplicate names and keys across files, and folder scans.
#include "core/host/plugin_host.h"

#include <fstream>

#include "host/fixtures.h"
#include "semline/plugin.h"

using namespace semline;
using host_test::error_of;
using host_test::TempDir;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

fs::path test_plugin(const std::string& name) {
  return fs::canonical(fs::path(SEMLINE_TEST_PLUGIN_DIR) / ("libsemline-test-" + name + ".so"));
}

// The host still works after whatever happened before: the good plugin loads and is usable.
void check_good_plugin_loads(PluginHost& host, StageRegistry& reg) {
  host.load(test_plugin("good"));
  const RegisteredStage* s = reg.find(StageKind::Sampler, "lowest_id", "any");
  REQUIRE(s);
  CHECK(s->plugin == "test-good");
  auto sampler = s->entry.make_sampler(StageContext{});
  Candidates c{{{5, 1.0f, 0}, {2, 0.0f, 0}, {4, 3.0f, 0}}};
  sampler->apply(c, {});
  CHECK(c.selected == 1);
}

class ImmediateStream final : public Stream {
 public:
  void synchronize() override {}
};

}  // namespace

TEST_CASE("a good plugin loads, names its origin, and its entries work") {
  host_test::LogCapture log;
  StageRegistry reg;
  PluginHost host(reg);
  check_good_plugin_loads(host, reg);

  REQUIRE(reg.plugins().size() == 1);
  const PluginRecord& rec = reg.plugins()[0];
  CHECK(rec.name == "test-good");
  CHECK(rec.version == "1.2.3");
  CHECK(rec.description == "Well-formed test plugin");
  CHECK(rec.file == test_plugin("good"));
  CHECK(rec.abi_major == SEMLINE_ABI_MAJOR);
  CHECK(rec.abi_minor == 0);
  CHECK_THAT(log.text(), Contains("info [test-good] registered 2 entries"));

  const RegisteredStage* norm = reg.find(StageKind::Norm, "unit_rms", "cpu");
  REQUIRE(norm);
  CHECK(norm->file == test_plugin("good"));
  CHECK(norm->entry.rank == 3);
  REQUIRE(norm->entry.params.size() == 1);
  CHECK(norm->entry.params[0].name == "eps");

  HParams hp;
  hp.n_embd = 4;
  StageContext ctx;
  ctx.hp = &hp;
  ctx.params.values["eps"] = norm->entry.params[0].default_value;
  auto stage = norm->entry.make_stage(ctx);
  float in[8] = {1, -1, 1, -1, 2, 0, 0, 0}, out[8] = {};
  Batch batch;
  batch.n_tokens = 2;
  ImmediateStream stream;
  stage->forward(make_tensor(DType::F32, {4, 2}, in), make_tensor(DType::F32, {4, 2}, out), Step{batch, stream});
  CHECK(out[0] == Approx(1.0).epsilon(1e-4));
  CHECK(out[1] == Approx(-1.0).epsilon(1e-4));
  CHECK(out[4] == Approx(2.0).epsilon(1e-4));
  CHECK(out[5] == 0.0f);
  CHECK(stage->cost(batch).flops == 24.0);

  // A failure inside the plugin's factory surfaces as a semline::Error naming entry and plugin.
  CHECK(error_of([&] { norm->entry.make_stage(StageContext{}); }) ==
        "norm.unit_rms.cpu (plugin 'test-good'): unit_rms needs the model's hyper-parameters");
}

TEST_CASE("the ABI rule: the same major, and a minor no newer than the host's") {
  // A host of 2.3 (numbers chosen for the rule, whatever this build's are).
  CHECK(abi_refusal(2, 3, 2, 3).empty());
  CHECK(abi_refusal(2, 0, 2, 3).empty());  // an older minor: its fields are a prefix of ours
  CHECK(abi_refusal(2, 4, 2, 3) ==
        "built for semline plugin ABI 2.4, newer than this host's 2.3: it may read fields this host does not provide; "
        "upgrade semline or rebuild the plugin against this SDK");
  CHECK_THAT(abi_refusal(1, 9, 2, 3), Contains("built for semline plugin ABI 1.9, this host speaks ABI 2.3"));
  CHECK_THAT(abi_refusal(3, 0, 2, 3), Contains("built for semline plugin ABI 3.0, this host speaks ABI 2.3"));
  // This host against its own headers.
  CHECK(abi_refusal(SEMLINE_ABI_MAJOR, SEMLINE_ABI_MINOR, SEMLINE_ABI_MAJOR, SEMLINE_ABI_MINOR).empty());
}

TEST_CASE("loading the same file twice is a no-op") {
  StageRegistry reg;
  PluginHost host(reg);
  host.load(test_plugin("good"));
  host.load(fs::path(SEMLINE_TEST_PLUGIN_DIR) / "." / "libsemline-test-good.so");
  CHECK(reg.plugins().size() == 1);
}

TEST_CASE("each refused plugin gives one line naming the file, and the host loads others after") {
  TempDir tmp;
  const fs::path text = tmp.path() / "libsemline-x.so";
  std::ofstream(text) << "not an ELF file\n";

  struct Case {
    fs::path file;
    std::string message;
  };
  const Case cases[] = {
      {text, text.string() + ": cannot be loaded as a shared library: "},
      {tmp.path() / "libsemline-missing.so", (tmp.path() / "libsemline-missing.so").string() + ": cannot open plugin"},
      {tmp.path(), tmp.path().string() + ": not a plugin"},
      {test_plugin("no-entry"), test_plugin("no-entry").string() +
                                    ": not a semline plugin: it does not export semline_plugin_entry"},
      {test_plugin("null-entry"),
       test_plugin("null-entry").string() + ": semline_plugin_entry returned no plugin descriptor"},
      {test_plugin("wrong-abi"), test_plugin("wrong-abi").string() +
                                     ": built for semline plugin ABI 999.0, this host speaks ABI " + std::to_string(SEMLINE_ABI_MAJOR) + ".0"},
      {test_plugin("old-major"), test_plugin("old-major").string() + ": built for semline plugin ABI " +
                                     std::to_string(SEMLINE_ABI_MAJOR - 1) + ".0, this host speaks ABI " +
                                     std::to_string(SEMLINE_ABI_MAJOR) + "." + std::to_string(SEMLINE_ABI_MINOR) +
                                     "; another major changes layouts and virtual tables, so rebuild the plugin "
                                     "against this semline SDK"},
      {test_plugin("newer-minor"), test_plugin("newer-minor").string() + ": built for semline plugin ABI " +
                                       std::to_string(SEMLINE_ABI_MAJOR) + "." + std::to_string(SEMLINE_ABI_MINOR + 1) +
                                       ", newer than this host's " + std::to_string(SEMLINE_ABI_MAJOR) + "." +
                                       std::to_string(SEMLINE_ABI_MINOR) +
                                       ": it may read fields this host does not provide"},
      {test_plugin("throws"), test_plugin("throws").string() +
                                  ": plugin 'test-throws' failed to register its entries: deliberate failure after "
                                  "adding an entry"},
      {test_plugin("malformed"), test_plugin("malformed").string() +
                                     ": plugin 'test-malformed': stage entry sampler..any: sampler variant '' is "
                                     "not a valid name"},
  };
  for (const Case& c : cases) {
    INFO(c.file);
    StageRegistry reg;
    PluginHost host(reg);
    CHECK_THAT(error_of([&] { host.load(c.file); }), Contains(c.message));
    CHECK(reg.plugins().empty());
    CHECK(reg.stages().empty());
    check_good_plugin_loads(host, reg);
    // Nothing of the refused plugin appears later either.
    CHECK(reg.find(StageKind::Sampler, "orphan", "any") == nullptr);
    CHECK(reg.find(StageKind::Sampler, "valid_part", "any") == nullptr);
    CHECK(reg.find(StageKind::Sampler, "from_abi_999", "any") == nullptr);
    CHECK(reg.find(StageKind::Sampler, "from_old_major", "any") == nullptr);
    CHECK(reg.find(StageKind::Sampler, "from_newer_minor", "any") == nullptr);
    CHECK(reg.plugins().size() == 1);
  }
}

TEST_CASE("a plugin name already loaded from another file is refused") {
  TempDir tmp;
  const fs::path copy = tmp.path() / "libsemline-test-good-copy.so";
  fs::copy_file(test_plugin("good"), copy);
  StageRegistry reg;
  PluginHost host(reg);
  host.load(test_plugin("good"));
  CHECK(error_of([&] { host.load(copy); }) ==
        fs::canonical(copy).string() + ": plugin 'test-good' is already loaded from " +
            test_plugin("good").string() + "; plugin names must be unique, remove one of the two files from the plugin path");
  host.load(test_plugin("dup-a"));
  CHECK(reg.plugins().size() == 2);
}

TEST_CASE("two plugin files registering one key") {
  StageRegistry reg;
  PluginHost host(reg);
  SECTION("without a preference the first keeps the key and both keep the rest, one line naming both") {
    host_test::LogCapture log;
    host.load(test_plugin("dup-a"));
    host.load(test_plugin("dup-b"));
    CHECK(reg.find(StageKind::Sampler, "first", "any")->plugin == "test-dup-a");
    CHECK(reg.find(StageKind::Sampler, "max_logit", "any")->plugin == "test-dup-b");
    CHECK_THAT(log.text(), Contains("warning sampler.first.any: registered by plugin 'test-dup-a' (" +
                                    test_plugin("dup-a").string() + ") and by plugin 'test-dup-b' (" +
                                    test_plugin("dup-b").string() + "); the first loaded keeps it") &&
                               Contains("[runtime.prefer] \"sampler.first.any\" = \"test-dup-a\" or \"test-dup-b\""));
    check_good_plugin_loads(host, reg);
  }
  SECTION("load when the config names the winner; the loser keeps its other entries") {
    reg.set_preferences({{"sampler.first.any", "test-dup-a"}});
    host.load(test_plugin("dup-b"));
    host.load(test_plugin("dup-a"));
    const RegisteredStage* first = reg.find(StageKind::Sampler, "first", "any");
    REQUIRE(first);
    CHECK(first->plugin == "test-dup-a");
    CHECK(first->file == test_plugin("dup-a"));
    CHECK(first->entry.description == "selects the first candidate (from a)");
    const RegisteredStage* max_logit = reg.find(StageKind::Sampler, "max_logit", "any");
    REQUIRE(max_logit);
    CHECK(max_logit->plugin == "test-dup-b");
    auto s = max_logit->entry.make_sampler(StageContext{});
    Candidates c{{{1, 0.5f, 0}, {2, 4.0f, 0}, {3, -1.0f, 0}}};
    s->apply(c, {});
    CHECK(c.selected == 1);
    reg.check_preferences();
  }
}

TEST_CASE("load_all scans folders, reports each refusal and visits every file once") {
  TempDir tmp;
  const fs::path dir = tmp.path() / "plugins";
  fs::create_directories(dir);
  for (const char* name : {"good", "dup-a", "dup-b", "wrong-abi", "throws"})
    fs::copy_file(test_plugin(name), dir / ("libsemline-test-" + std::string(name) + ".so"));
  std::ofstream(dir / "README.txt") << "not a plugin, and not named like one\n";
  std::ofstream(dir / "libother.so") << "not named like a plugin either\n";

  host_test::LogCapture log;
  StageRegistry reg;
  PluginHost host(reg);
  const auto refused =
      host.load_all({dir, dir / ".", dir / "libsemline-test-good.so", tmp.path() / "nowhere", dir});
  REQUIRE(refused.size() == 3);
  CHECK_THAT(refused[0], Contains("libsemline-test-throws.so"));
  CHECK_THAT(refused[1], Contains("libsemline-test-wrong-abi.so: built for semline plugin ABI 999"));
  CHECK_THAT(refused[2], Contains("nowhere: plugin path does not exist"));
  for (const auto& message : refused) CHECK_THAT(log.text(), Contains("error " + message));
  // Files load in name order: dup-a before dup-b, so dup-a keeps the key they share and dup-b
  // loads with the rest of its entries.
  CHECK_THAT(log.text(), Contains("warning sampler.first.any: registered by plugin 'test-dup-a'"));
  CHECK(reg.find(StageKind::Sampler, "first", "any")->plugin == "test-dup-a");

  REQUIRE(reg.plugins().size() == 3);
  CHECK(reg.plugins()[0].name == "test-dup-a");
  CHECK(reg.plugins()[1].name == "test-dup-b");
  CHECK(reg.plugins()[2].name == "test-good");

  // Scanning again loads nothing twice and refuses the same files again.
  CHECK(host.load_all({dir}).size() == 2);
  CHECK(reg.plugins().size() == 3);
}
