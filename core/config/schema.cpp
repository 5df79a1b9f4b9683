// The config schema: every table, key, type and range, with the messages that name them.
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "core/config/merge.h"
#include "core/util/text.h"
#include "semline/error.h"
#include "semline/stage.h"

namespace semline::config_detail {
namespace {

namespace fs = std::filesystem;
using Names = std::vector<std::string>;

// Values quoted in messages are cut to this many bytes so that an error stays one short line.
constexpr size_t kMaxValueText = 60;

// Bounds that keep later allocations sane; the schema's minimums come from the meaning of each key.
constexpr int64_t kMaxThreads = 1024;
constexpr int64_t kMaxContext = int64_t{1} << 24;
constexpr int64_t kMaxBatchTokens = 65536;
constexpr int64_t kMaxBlockTokens = 4096;
constexpr int64_t kMaxSeqs = 4096;
constexpr int64_t kMaxCacheMib = int64_t{1} << 24;  // 16 TiB
constexpr int64_t kMaxCacheBlocks = int64_t{1} << 30;
constexpr int64_t kMaxDraftTokens = 64;
constexpr int64_t kMaxNgram = 64;
constexpr int64_t kMaxRanks = 4096;

// ---------------------------------------------------------------------------------------------
// Describing keys and values in messages

std::string kind_of(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a bool";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "nothing";
  }
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(u));
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// The shortest text that reads back as the same double (toml++'s own printing shows 17 digits).
std::string float_text(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string cut(std::string s) {
  if (s.size() <= kMaxValueText) return s;
  size_t end = kMaxValueText - 3;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;  // whole UTF-8 chars
  return s.substr(0, end) + "...";
}

std::string key_text(std::string_view k) {
  bool bare = !k.empty();
  for (char ch : k)
    bare = bare && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    ch == '_' || ch == '-');
  return bare ? std::string(k) : quote(k);
}

std::string value_text(const toml::node& n) {
  std::string s;
  if (auto v = n.as_string()) {
    s = quote(v->get());
  } else if (auto i = n.as_integer()) {
    s = std::to_string(i->get());
  } else if (auto f = n.as_floating_point()) {
    s = float_text(f->get());
  } else if (auto b = n.as_boolean()) {
    s = b->get() ? "true" : "false";
  } else if (auto a = n.as_array()) {
    s = "[";
    for (size_t i = 0; i < a->size() && s.size() <= kMaxValueText; ++i)
      s += (i ? ", " : "") + value_text(*a->get(i));
    s += "]";
  } else if (auto t = n.as_table()) {
    s = "{";
    for (auto&& [k, v] : *t) {
      if (s.size() > kMaxValueText) break;
      s += (s.size() > 1 ? ", " : " ") + key_text(k.str()) + " = " + value_text(v);
    }
    s += s.size() > 1 ? " }" : "}";
  } else {
    std::ostringstream os;  // dates and times: toml++ writes them in TOML syntax
    n.visit([&](auto&& x) { os << x; });
    s = os.str();
  }
  return cut(std::move(s));
}

std::string sub_key(const std::string& parent, std::string_view k) {
  return parent.empty() ? key_text(k) : parent + "." + key_text(k);
}

Names stage_kind_names(bool per_layer) {
  Names names;
  for (StageKind k : kAllStageKinds) {
    if (per_layer && (k == StageKind::Tokenizer || k == StageKind::Sampler)) continue;
    names.emplace_back(stage_kind_name(k));
  }
  return names;
}

bool contains(const Names& names, std::string_view s) {
  for (const auto& n : names)
    if (n == s) return true;
  return false;
}

std::string range_text(int first, int last) {
  return "\"" + std::to_string(first) + (first == last ? "" : "-" + std::to_string(last)) + "\"";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool parse_layer_number(std::string_view s, int& out) {
  s = trim(s);
  if (s.empty()) return false;
  for (char ch : s)
    if (ch < '0' || ch > '9') return false;
  auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return res.ec == std::errc{} && res.ptr == s.data() + s.size();
}

// "N" or "N-M".
bool parse_layer_range(std::string_view s, int& first, int& last) {
  size_t dash = s.find('-');
  if (dash == std::string_view::npos) {
    if (!parse_layer_number(s, first)) return false;
    last = first;
    return true;
  }
  return parse_layer_number(s.substr(0, dash), first) && parse_layer_number(s.substr(dash + 1), last);
}

// ---------------------------------------------------------------------------------------------
// Typed reads that fail with the key, the value and what would be valid

class Reader {
 public:
  Reader(const std::string& source, const fs::path& base_dir) : source_(source), base_dir_(base_dir) {}

  SourcePos at(const toml::source_region& r) const {
    return {source_, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
  }
  SourcePos at(const toml::node& n) const { return at(n.source()); }

  [[noreturn]] void fail(const toml::source_region& r, std::string_view message) const {
    throw Error(config_error(at(r), message));
  }
  [[noreturn]] void bad_value(const std::string& key, const toml::node& n, std::string_view problem) const {
    fail(n.source(), key + " = " + value_text(n) + ": " + std::string(problem));
  }
  [[noreturn]] void unknown_key(const toml::key& k, std::string_view where, const Names& valid) const {
    std::string name = quote(k.str());  // escaped, shown in single quotes like the suggestion
    name.front() = name.back() = '\'';
    fail(k.source(), "unknown key " + name + " in " + std::string(where) +
                         did_you_mean(k.str(), valid) + "; valid keys: " + join(valid));
  }

  const toml::table& table(const std::string& key, const toml::node& n, std::string_view example) const {
    if (auto t = n.as_table()) return *t;
    bad_value(key, n, "expected a table such as " + std::string(example) + ", got " + kind_of(n));
  }

  int integer(const std::string& key, const toml::node& n, int64_t lo, int64_t hi) const {
    std::string valid = "an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
    auto v = n.as_integer();
    if (!v) bad_value(key, n, "expected " + valid + ", got " + kind_of(n));
    if (v->get() < lo || v->get() > hi) bad_value(key, n, "out of range; expected " + valid);
    return static_cast<int>(v->get());
  }

  bool boolean(const std::string& key, const toml::node& n) const {
    auto b = n.as_boolean();
    if (!b) bad_value(key, n, "expected true or false, got " + kind_of(n));
    return b->get();
  }

  std::string string(const std::string& key, const toml::node& n) const {
    auto v = n.as_string();
    if (!v) bad_value(key, n, "expected a string, got " + kind_of(n));
    if (v->get().empty()) bad_value(key, n, "expected a non-empty string");
    return v->get();
  }

  std::vector<std::string> strings(const std::string& key, const toml::node& n, std::string_view why) const {
    auto a = n.as_array();
    if (!a) bad_value(key, n, "expected an array of strings, got " + kind_of(n));
    std::vector<std::string> out;
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      auto s = e.as_string();
      if (!s) bad_value(key + "[" + std::to_string(i) + "]", e, "expected a string, got " + kind_of(e) + std::string(why));
      out.push_back(s->get());
    }
    return out;
  }

  fs::path path(const std::string& key, const toml::node& n) const { return resolve(string(key, n)); }

  fs::path resolve(const fs::path& p) const {
    if (base_dir_.empty() || p.is_absolute()) return p;
    return (base_dir_ / p).lexically_normal();
  }

 private:
  const std::string& source_;
  const fs::path& base_dir_;
};

// ---------------------------------------------------------------------------------------------
// The tables

void merge_model(Config& c, const toml::table& t, const Reader& r) {
  for (auto&& [k, v] : t) {
    if (k.str() == "path") {
      c.model.path = r.path("model.path", v);
      c.model.pos = r.at(v);
    } else {
      r.unknown_key(k, "[model]", {"path"});
    }
  }
}

void check_prefer_key(const std::string& name, const toml::key& k, const Reader& r) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1)
    parts.push_back(name.substr(start, dot - start));
  parts.push_back(name.substr(start));
  const std::string what = "runtime.prefer key " + quote(name);
  // Backends and architecture templates are keyed "backend.<name>" and "arch.<name>".
  if (parts.size() == 2 && (parts[0] == "backend" || parts[0] == "arch") && !parts[1].empty()) return;
  bool well_formed = parts.size() == 3;
  for (const auto& p : parts) well_formed = well_formed && !p.empty();
  if (!well_formed)
    r.fail(k.source(), what + ": expected \"kind.variant.backend\" (e.g. \"attention.flash.cpu\"), \"backend.<name>\" or \"arch.<name>\"");
  Names kinds = stage_kind_names(false);
  if (!contains(kinds, parts[0]))
    r.fail(k.source(), what + ": unknown stage kind '" + parts[0] + "'" + did_you_mean(parts[0], kinds) +
                           "; kinds: " + join(kinds));
}

// Nested tables are flattened, so prefer.attention.flash.cpu and prefer."attention.flash.cpu" agree.
void merge_prefer(Config& c, const std::string& prefix, const toml::table& t, const Reader& r) {
  for (auto&& [k, v] : t) {
    std::string name = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto nested = v.as_table()) {
      merge_prefer(c, name, *nested, r);
      continue;
    }
    check_prefer_key(name, k, r);
    c.runtime.prefer[name] = r.string("runtime.prefer." + quote(name), v);
  }
}

void merge_runtime(Config& c, const toml::table& t, const Reader& r) {
  static const Names keys = {"backend", "threads", "plugin_paths", "max_batch_tokens", "max_seqs", "context", "prefer"};
  for (auto&& [k, v] : t) {
    const std::string key = sub_key("runtime", k.str());
    if (k.str() == "backend") {
      c.runtime.backend = r.string(key, v);
      c.runtime.backend_pos = r.at(v);
    } else if (k.str() == "threads") {
      c.runtime.threads = r.integer(key, v, 0, kMaxThreads);
    } else if (k.str() == "plugin_paths") {
      c.runtime.plugin_paths.clear();
      for (const auto& p : r.strings(key, v, ""))
        c.runtime.plugin_paths.push_back(r.resolve(p));
    } else if (k.str() == "max_batch_tokens") {
      c.runtime.max_batch_tokens = r.integer(key, v, 1, kMaxBatchTokens);
    } else if (k.str() == "max_seqs") {
      c.runtime.max_seqs = r.integer(key, v, 1, kMaxSeqs);
    } else if (k.str() == "context") {
      c.runtime.context = r.integer(key, v, 0, kMaxContext);
    } else if (k.str() == "prefer") {
      merge_prefer(c, "", r.table(key, v, "{ \"attention.flash.cpu\" = \"my-plugin\" }"), r);
    } else {
      r.unknown_key(k, "[runtime]", keys);
    }
  }
}

// An array parameter: all strings, all integers, or numbers (integers and floats together are
// floats); an empty array is an empty string list, which the schema check takes for any list.
ParamValue param_array(const std::string& key, const toml::array& a, const Reader& r) {
  const char* const kinds = "; a parameter array holds strings, integers or numbers, one kind";
  std::vector<std::string> strings;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  bool any_float = false;
  for (size_t i = 0; i < a.size(); ++i) {
    const toml::node& e = *a.get(i);
    const std::string ekey = key + "[" + std::to_string(i) + "]";
    const bool first_string = i == 0 ? e.is_string() : !strings.empty();
    if (first_string) {
      auto s = e.as_string();
      if (!s) r.bad_value(ekey, e, "expected a string like the first element, got " + kind_of(e) + kinds);
      strings.push_back(s->get());
    } else if (auto n = e.as_integer()) {
      ints.push_back(n->get());
      floats.push_back(static_cast<double>(n->get()));
    } else if (auto f = e.as_floating_point()) {
      any_float = true;
      floats.push_back(f->get());
    } else {
      r.bad_value(ekey, e, "expected " + std::string(i == 0 ? "a string or a number" : "a number like the first element") +
                               ", got " + kind_of(e) + kinds);
    }
  }
  if (!strings.empty() || a.empty()) return strings;
  if (any_float) return floats;
  return ints;
}

ParamValue param_value(const std::string& key, const toml::node& n, const Reader& r) {
  if (auto b = n.as_boolean()) return b->get();
  if (auto i = n.as_integer()) return i->get();
  if (auto f = n.as_floating_point()) return f->get();
  if (auto s = n.as_string()) return s->get();
  if (auto a = n.as_array()) return param_array(key, *a, r);
  r.bad_value(key, n, kind_of(n) + " is not a parameter value; parameters are bool, integer, float, "
                      "string or an array of strings or numbers");
}

// The sampler is a chain, and two members may declare parameters of one name: a table inside
// [stages.sampler] named after a member holds that member's own parameters, stored as
// "member.parameter" (e.g. stages.sampler.top_k = { top_k = 20 } -> "top_k.top_k").
void merge_member_params(StageChoice& s, const std::string& member, const std::string& key, const toml::table& t,
                         const Reader& r) {
  for (auto&& [k, v] : t) {
    const std::string vkey = sub_key(key, k.str());
    if (v.is_table())
      r.bad_value(vkey, v, "a sampler's own parameters are values, not tables (e.g. " + key + " = { " +
                               key_text(k.str()) + " = 1 })");
    s.params[member + "." + std::string(k.str())] = {param_value(vkey, v, r), r.at(v)};
  }
}

void merge_stage(StageChoice& s, const std::string& key, const toml::node& n, const Reader& r) {
  const toml::table& t = r.table(key, n, "{ variant = \"...\" }");
  if (s.pos.file.empty()) s.pos = r.at(t);
  for (auto&& [k, v] : t) {
    const std::string vkey = sub_key(key, k.str());
    if (k.str() == "variant") {
      s.variant = r.string(vkey, v);
      s.variant_pos = r.at(v);
    } else if (k.str() == "backend") {
      s.backend = r.string(vkey, v);
      s.backend_pos = r.at(v);
    } else if (key == "stages.sampler" && v.is_table()) {
      merge_member_params(s, std::string(k.str()), vkey, *v.as_table(), r);
    } else {
      s.params[std::string(k.str())] = {param_value(vkey, v, r), r.at(v)};
    }
  }
}

void merge_layer(Config& c, const std::string& key, const toml::node& n, const Reader& r) {
  const toml::table& t = r.table(key, n, "{ range = \"0-3\", attention = { variant = \"dense\" } }");
  static const Names kinds = stage_kind_names(true);
  Names keys = kinds;
  keys.insert(keys.begin(), "range");
  LayerOverride layer;
  bool has_range = false;
  for (auto&& [k, v] : t) {
    const std::string vkey = sub_key(key, k.str());
    if (k.str() == "range") {
      auto s = v.as_string();
      if (!s) r.bad_value(vkey, v, "expected a string \"N\" or \"N-M\", got " + kind_of(v));
      if (!parse_layer_range(s->get(), layer.first, layer.last))
        r.bad_value(vkey, v, "expected \"N\" or \"N-M\" with layer numbers N <= M, e.g. \"0-3\"");
      if (layer.first > layer.last)
        r.bad_value(vkey, v, "first layer " + std::to_string(layer.first) + " is after last layer " +
                                 std::to_string(layer.last) + "; expected \"N-M\" with N <= M");
      layer.pos = r.at(v);
      has_range = true;
    } else if (k.str() == stage_kind_name(StageKind::Tokenizer) || k.str() == stage_kind_name(StageKind::Sampler)) {
      r.fail(k.source(), vkey + ": the " + std::string(k.str()) + " is not per layer; set it under [stages]");
    } else if (contains(kinds, k.str()) || v.is_table()) {
      // A kind, or a table for a station of the model's template: the graph checks that name.
      StageChoice& s = layer.stages[std::string(k.str())];
      s.key_pos = r.at(k.source());
      merge_stage(s, vkey, v, r);
    } else {
      r.unknown_key(k, "[[stages.layers]]", keys);
    }
  }
  if (!has_range)
    r.fail(t.source(), key + " has no range; add range = \"N\" or \"N-M\" (layers N to M)");
  if (layer.stages.empty())
    r.fail(t.source(), key + " (range " + range_text(layer.first, layer.last) +
                           ") sets no stage; add one of " + join(kinds) + ", e.g. attention = { variant = \"dense\" }");
  c.layers.push_back(std::move(layer));
}

void merge_layers(Config& c, const toml::node& n, const Reader& r) {
  auto a = n.as_array();
  if (!a) r.bad_value("stages.layers", n, "expected [[stages.layers]] tables, got " + kind_of(n));
  for (size_t i = 0; i < a->size(); ++i)
    merge_layer(c, "stages.layers[" + std::to_string(i) + "]", *a->get(i), r);
}

void merge_stages(Config& c, const toml::table& t, const Reader& r) {
  static const Names kinds = stage_kind_names(false);
  Names keys = kinds;
  keys.push_back("layers");
  for (auto&& [k, v] : t) {
    if (k.str() == "layers")
      merge_layers(c, v, r);
    else if (contains(kinds, k.str()) || v.is_table()) {
      // A kind, or a table for a station of the model's template: the graph checks that name.
      StageChoice& s = c.stages[std::string(k.str())];
      if (s.key_pos.file.empty()) s.key_pos = r.at(k.source());
      merge_stage(s, sub_key("stages", k.str()), v, r);
    } else {
      r.unknown_key(k, "[stages]", keys);
    }
  }
}

// [backends.<name>] tables hold parameters typed as TOML gave them; the backend's schema checks
// them when the line creates it.
void merge_backends(Config& c, const toml::table& t, const Reader& r) {
  for (auto&& [name, table] : t) {
    const std::string key = sub_key("backends", name.str());
    for (auto&& [k, v] : r.table(key, table, "[backends." + std::string(name.str()) + "] key = value")) {
      const std::string vkey = sub_key(key, k.str());
      c.backends[std::string(name.str())][std::string(k.str())] = {param_value(vkey, v, r), r.at(v)};
    }
  }
}

void merge_kv_cache(Config& c, const toml::table& t, const Reader& r) {
  if (c.kv_cache.pos.file.empty()) c.kv_cache.pos = r.at(t);
  for (auto&& [k, v] : t) {
    const std::string key = sub_key("kv_cache", k.str());
    if (k.str() == "block_tokens") {
      c.kv_cache.block_tokens = r.integer(key, v, 1, kMaxBlockTokens);
    } else if (k.str() == "dtype") {
      static const Names dtypes = {"f32", "f16", "q8_0"};
      std::string d = r.string(key, v);
      if (!contains(dtypes, d))
        r.bad_value(key, v, "expected \"f32\", \"f16\" or \"q8_0\"" + did_you_mean(d, dtypes));
      c.kv_cache.dtype = d;
    } else if (k.str() == "size_mib") {
      c.kv_cache.size_mib = r.integer(key, v, 1, kMaxCacheMib);
    } else if (k.str() == "blocks") {
      c.kv_cache.blocks = r.integer(key, v, 1, kMaxCacheBlocks);
    } else if (k.str() == "prefix_caching") {
      c.kv_cache.prefix_caching = r.boolean(key, v);
    } else {
      r.unknown_key(k, "[kv_cache]", {"block_tokens", "dtype", "size_mib", "blocks", "prefix_caching"});
    }
  }
}

void merge_speculative(Config& c, const toml::table& t, const Reader& r) {
  if (c.speculative.pos.file.empty()) c.speculative.pos = r.at(t);
  for (auto&& [k, v] : t) {
    const std::string key = sub_key("speculative", k.str());
    if (k.str() == "proposer") {
      // The engine's own, or a plugin's: only the registry knows (make_proposer checks the name).
      c.speculative.proposer = r.string(key, v);
      c.speculative.proposer_pos = r.at(v);
    } else if (k.str() == "k") {
      c.speculative.k = r.integer(key, v, 1, kMaxDraftTokens);
    } else if (k.str() == "adaptive") {
      c.speculative.adaptive = r.boolean(key, v);
    } else if (k.str() == "ngram_min") {
      c.speculative.ngram_min = r.integer(key, v, 1, kMaxNgram);
    } else if (k.str() == "ngram_max") {
      c.speculative.ngram_max = r.integer(key, v, 1, kMaxNgram);
    } else if (k.str() == "draft_model") {
      c.speculative.draft_model = r.path(key, v);
      c.speculative.draft_model_pos = r.at(v);
    } else {
      c.speculative.params[std::string(k.str())] = {param_value(key, v, r), r.at(v)};
    }
  }
  if (c.speculative.ngram_min > c.speculative.ngram_max)
    r.fail(t.source(), "[speculative]: ngram_min = " + std::to_string(c.speculative.ngram_min) + " is above ngram_max = " +
                           std::to_string(c.speculative.ngram_max) + "; expected ngram_min <= ngram_max");
}

void merge_parallel(Config& c, const toml::table& t, const Reader& r) {
  if (c.parallel.pos.file.empty()) c.parallel.pos = r.at(t);
  for (auto&& [k, v] : t) {
    const std::string key = sub_key("parallel", k.str());
    if (k.str() == "tensor")
      c.parallel.tensor = r.integer(key, v, 1, kMaxRanks);
    else if (k.str() == "pipeline")
      c.parallel.pipeline = r.integer(key, v, 1, kMaxRanks);
    else if (k.str() == "comm")
      c.parallel.comm = r.string(key, v);  // a plugin's: only the registry knows
    else if (k.str() == "expert_parallel")
      c.parallel.expert_parallel = r.boolean(key, v);
    else
      c.parallel.params[std::string(k.str())] = {param_value(key, v, r), r.at(v)};
  }
}

// [serve]: [[serve.variants]] tables, each { name, share, config, set }.
void merge_serve(Config& c, const toml::table& t, const Reader& r) {
  for (auto&& [k, v] : t) {
    const std::string key = sub_key("serve", k.str());
    if (k.str() != "variants") r.unknown_key(k, "[serve]", {"variants"});
    auto a = v.as_array();
    if (!a) r.bad_value(key, v, "expected [[serve.variants]] tables, got " + kind_of(v));
    c.serve_variants.clear();
    for (size_t i = 0; i < a->size(); ++i) {
      const std::string vkey = key + "[" + std::to_string(i) + "]";
      const toml::table& vt = r.table(vkey, *a->get(i), "{ name = \"a\", share = 1, set = [\"...\"] }");
      ServeVariantConfig sv;
      sv.pos = r.at(vt);
      for (auto&& [fk, fv] : vt) {
        const std::string fkey = vkey + "." + key_text(fk.str());
        if (fk.str() == "name") {
          sv.name = r.string(fkey, fv);
          for (char ch : sv.name)
            if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' && ch != '.')
              r.bad_value(fkey, fv, "expected letters, digits, '_', '-' or '.' (it is a header value and a metric label)");
        } else if (fk.str() == "share") {
          const double share = fv.is_integer() ? static_cast<double>(fv.as_integer()->get())
                               : fv.is_floating_point() ? fv.as_floating_point()->get()
                                                        : -1;
          if (!(share >= 0)) r.bad_value(fkey, fv, "expected a number >= 0, got " + kind_of(fv));
          sv.share = share;
        } else if (fk.str() == "config") {
          sv.config = r.path(fkey, fv);
        } else if (fk.str() == "set") {
          sv.sets = r.strings(fkey, fv, "");
        } else {
          r.unknown_key(fk, "[[serve.variants]]", {"name", "share", "config", "set"});
        }
      }
      if (sv.name.empty()) r.bad_value(vkey, *a->get(i), "a variant needs a name");
      for (const ServeVariantConfig& other : c.serve_variants)
        if (other.name == sv.name) r.bad_value(vkey + ".name", *a->get(i), "the name '" + sv.name + "' is taken by another variant");
      c.serve_variants.push_back(std::move(sv));
    }
  }
}

// Each range is checked against the earlier ones, which are disjoint until the first overlap and
// so ordered alike by first and last layer: the ranges that can meet [first, last] are the ones
// just below `last` in a map keyed by first layer. A config of many thousand overrides (a 4 MiB
// file holds 100000) is then checked in n log n steps, not pairwise. The earliest range met is the
// one named, as a pairwise check in file order would.
void check_layer_overlap(const Config& c) {
  std::map<int, size_t> by_first;  // first layer -> index in c.layers
  for (size_t j = 0; j < c.layers.size(); ++j) {
    const LayerOverride& b = c.layers[j];
    size_t hit = c.layers.size();
    for (auto it = by_first.upper_bound(b.last); it != by_first.begin();) {
      --it;
      if (c.layers[it->second].last < b.first) break;
      hit = std::min(hit, it->second);
    }
    if (hit < c.layers.size()) {
      const LayerOverride& a = c.layers[hit];
      throw Error(config_error(b.pos, "layer range " + range_text(b.first, b.last) + " overlaps range " +
                                          range_text(a.first, a.last) + " at " + a.pos.str() +
                                          "; each layer may be named by one [[stages.layers]] table"));
    }
    by_first.emplace(b.first, j);
  }
}

}  // namespace

void merge_toml(Config& c, std::string_view text, const std::string& source, const fs::path& base_dir) {
  toml::table doc;
  try {
    doc = toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw Error(config_error({source, static_cast<int>(b.line), static_cast<int>(b.column)}, e.description()));
  }
  const Reader r(source, base_dir);
  for (auto&& [k, v] : doc) {
    const std::string key = key_text(k.str());
    if (k.str() == "model")
      merge_model(c, r.table(key, v, "[model] with path = \"...\""), r);
    else if (k.str() == "runtime")
      merge_runtime(c, r.table(key, v, "[runtime]"), r);
    else if (k.str() == "stages")
      merge_stages(c, r.table(key, v, "[stages]"), r);
    else if (k.str() == "kv_cache")
      merge_kv_cache(c, r.table(key, v, "[kv_cache]"), r);
    else if (k.str() == "backends")
      merge_backends(c, r.table(key, v, "[backends.vulkan] device = \"0\""), r);
    else if (k.str() == "serve")
      merge_serve(c, r.table(key, v, "[[serve.variants]] name = \"a\""), r);
    else if (k.str() == "speculative")
      merge_speculative(c, r.table(key, v, "[speculative] proposer = \"ngram\""), r);
    else if (k.str() == "parallel")
      merge_parallel(c, r.table(key, v, "[parallel] tensor = 2"), r);
    else
      r.unknown_key(k, "the top level",
                    {"model", "runtime", "stages", "kv_cache", "speculative", "parallel", "backends", "serve"});
  }
  check_layer_overlap(c);
}

}  // namespace semline::config_detail
