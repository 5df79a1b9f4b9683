#include "core/graph/graph.h"

#include <algorithm>
#include <set>

#include "core/util/text.h"

namespace semline {

namespace {

bool is_host_kind(StageKind k) { return k == StageKind::Tokenizer || k == StageKind::Sampler; }

// The value of one HParams dimension name used in template shapes.
std::optional<int64_t> hparam_value(const HParams& hp, std::string_view name) {
  static const std::pair<const char*, int64_t HParams::*> fields[] = {
      {"n_vocab", &HParams::n_vocab},     {"n_embd", &HParams::n_embd},
      {"n_ff", &HParams::n_ff},           {"n_layer", &HParams::n_layer},
      {"n_head", &HParams::n_head},       {"n_head_kv", &HParams::n_head_kv},
      {"head_dim", &HParams::head_dim},   {"rope_dim", &HParams::rope_dim},
      {"n_expert", &HParams::n_expert},   {"n_ctx_train", &HParams::n_ctx_train},
  };
  for (const auto& [n, f] : fields)
    if (name == n) return hp.*f;
  // A family's own dimensions (HParams::extra, e.g. Mamba's ssm_d_inner) name themselves.
  if (auto it = hp.extra.find(std::string(name)); it != hp.extra.end()) return static_cast<int64_t>(it->second);
  return std::nullopt;
}

// "n_head*head_dim" or "ssm_dt_rank+2*ssm_d_state" (sums of products) -> its value; template
// errors name the template.
int64_t eval_dim(const HParams& hp, const std::string& expr, const std::string& arch) {
  int64_t sum = 0;
  for (const std::string& product : split(expr, '+')) {
    int64_t v = 1;
    for (const std::string& term : split(product, '*')) {
      if (!term.empty() && std::all_of(term.begin(), term.end(), ::isdigit)) {
        v *= std::stoll(term);
      } else if (auto x = hparam_value(hp, term)) {
        v *= *x;
      } else {
        throw Error("architecture template '" + arch + "': unknown dimension '" + term + "' in shape '" + expr + "'");
      }
    }
    sum += v;
  }
  return sum;
}

std::string substitute_layer(const std::string& pattern, int32_t layer) {
  std::string s = pattern;
  if (auto p = s.find("{L}"); p != std::string::npos) s.replace(p, 3, std::to_string(layer));
  return s;
}

std::string shape_string(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

class GraphBuilder {
 public:
  GraphBuilder(const Config& c, const ModelView& m, const StageRegistry& r) : config_(c), model_(m), reg_(r) {}

  GraphNode tokenizer_only() {
    HParams none;
    hp_ = &none;
    GraphNode n = tokenizer();
    hp_ = nullptr;
    return n;
  }

  PipelineGraph build() {
    PipelineGraph g;
    g.model_path = model_.path();
    g.arch = find_arch();
    g.hp = g.arch->entry.read_hparams(model_);
    hp_ = &g.hp;
    check_layer_ranges(g.hp);
    for (const auto* b : all_blocks(g.arch->entry)) {
      if (g.hp.parallel_residual && b->size() != 2)
        throw Error(model_.path() + ": the " + g.arch->entry.name + " template's blocks have " +
                    std::to_string(b->size()) +
                    " sub-layers; a parallel residual runs two (attention and feed-forward) on one input");
      for (const SublayerSpec& s : *b)
        if (s.post_norm && (g.hp.parallel_residual || s.post_norm->kind != StageKind::Norm))
          throw Error("architecture template '" + g.arch->entry.name + "': post norm '" + s.post_norm->name +
                      "' must be a norm station, in a block without a parallel residual");
    }
    check_station_names(g.arch->entry);
    const ArchTemplate& a = g.arch->entry;
    g.tokenizer = tokenizer();
    g.embedding = place(a.embedding, -1);
    for (int32_t l = 0; l < g.hp.n_layer; ++l) {
      std::vector<GraphSublayer> block;
      for (const SublayerSpec& s : block_of(a, g.hp, l)) {
        GraphSublayer sub{place(s.norm, l), place(s.op, l), std::nullopt};
        if (s.post_norm) sub.post_norm = place(*s.post_norm, l);
        block.push_back(std::move(sub));
      }
      g.blocks.push_back(std::move(block));
    }
    g.output_norm = place(a.output_norm, -1);
    g.head = place(a.head, -1);
    check_understood(g);
    g.sampler_chain = place_samplers();
    for (const GraphNode* n : g.nodes())
      if (n->backend != "any" && std::find(g.backends.begin(), g.backends.end(), n->backend) == g.backends.end())
        g.backends.push_back(n->backend);
    for (const std::string& b : g.backends)
      if (!reg_.find_backend(b)) throw Error(unknown_backend(b));
    return g;
  }

 private:
  const RegisteredArch* find_arch() {
    const MetaValue* v = model_.meta("general.architecture");
    if (!v || v->type != MetaType::STRING)
      throw Error(model_.path() + ": metadata key 'general.architecture' is missing or not a string");
    std::string name(v->str);
    if (const RegisteredArch* a = reg_.find_arch(name)) return a;
    std::vector<std::string> names;
    for (const RegisteredArch* a : reg_.archs()) names.push_back(a->entry.name);
    throw Error(model_.path() + ": architecture '" + name + "' has no template" + did_you_mean(name, names) +
                "; available: " + (names.empty() ? "none (is the archs plugin on the plugin path?)" : join(names)));
  }

  // No model may be half understood: a weight no station binds, or an "{arch}.*" key the template
  // does not know, would make the line compute something else than the model's authors (and
  // llama.cpp) do, without a word. Both are refused, named.
  void check_understood(const PipelineGraph& g) const {
    std::set<std::string_view> bound;
    for (const GraphNode* n : g.nodes())
      for (const auto& t : n->tensors) bound.insert(t.second);
    for (std::string_view name : model_.weight_names())
      if (!bound.count(name))
        throw Error(model_.path() + ": tensor '" + std::string(name) + "' is bound by no station of the " +
                    g.arch->entry.name + " template (plugin '" + g.arch->plugin +
                    "'); running without it would compute another model");
    const std::string prefix = g.arch->entry.name + ".";
    const std::vector<std::string>& known = g.arch->entry.metadata_keys;
    for (std::string_view key : model_.meta_keys()) {
      if (key.substr(0, prefix.size()) != prefix) continue;
      const std::string rest(key.substr(prefix.size()));
      if (std::find(known.begin(), known.end(), rest) == known.end())
        throw Error(model_.path() + ": metadata key '" + std::string(key) + "' is not one the " + g.arch->entry.name +
                    " template (plugin '" + g.arch->plugin + "') understands" + did_you_mean(rest, known) +
                    "; it may change what the model computes. Known: " + join(known));
    }
  }

  // Layer l's block: the template's one, or a hybrid's choice for that layer.
  const std::vector<SublayerSpec>& block_of(const ArchTemplate& a, const HParams& hp, int32_t l) const {
    if (!a.block_of) return a.block;
    const size_t i = a.block_of(hp, l);
    if (i > a.other_blocks.size())
      throw Error("architecture template '" + a.name + "': block_of gives block " + std::to_string(i) + " for layer " +
                  std::to_string(l) + "; it has " + std::to_string(a.other_blocks.size() + 1));
    return i == 0 ? a.block : a.other_blocks[i - 1];
  }

  void check_layer_ranges(const HParams& hp) {
    for (const LayerOverride& o : config_.layers)
      if (o.last >= hp.n_layer)
        throw Error(config_error(o.pos, "layer range " + std::to_string(o.first) + "-" + std::to_string(o.last) +
                                            " is past the model's last block " + std::to_string(hp.n_layer - 1)));
  }

  // A [stages] key that is not a stage kind must name a station of the model's template (a
  // [[stages.layers]] key, a station of its blocks): the config could not know the template.
  void check_station_names(const ArchTemplate& a) const {
    std::vector<std::string> kinds, block, all;
    for (StageKind k : kAllStageKinds) kinds.push_back(stage_kind_name(k));
    for (const auto* b : all_blocks(a))
      for (const SublayerSpec& s : *b)
        for (const StationSpec* st : {&s.norm, &s.op, s.post_norm ? &*s.post_norm : nullptr})
          if (st && std::find(block.begin(), block.end(), st->name) == block.end()) block.push_back(st->name);
    all = {a.embedding.name};
    all.insert(all.end(), block.begin(), block.end());
    all.push_back(a.output_norm.name);
    all.push_back(a.head.name);
    auto check = [&](const std::string& name, const StageChoice& c, const char* where,
                     const std::vector<std::string>& stations) {
      const auto known = [&](const std::vector<std::string>& v) { return std::find(v.begin(), v.end(), name) != v.end(); };
      if (known(kinds) || known(stations)) return;
      std::vector<std::string> valid = kinds;
      valid.insert(valid.end(), stations.begin(), stations.end());
      throw Error(config_error(c.key_pos, "unknown stage '" + name + "' in " + where + did_you_mean(name, valid) +
                                              "; valid: a stage kind (" + join(kinds) + ") or a station of the " +
                                              a.name + " template (" + join(stations) + ")"));
    };
    for (const auto& [name, c] : config_.stages) check(name, c, "[stages]", all);
    for (const LayerOverride& o : config_.layers)
      for (const auto& [name, c] : o.stages) check(name, c, "[[stages.layers]]", block);
  }

  // The config's choice for a station: a layer override, then [stages] by station name, then by kind.
  const StageChoice* choice_for(const StationSpec& st, int32_t layer) const {
    const std::string kind = stage_kind_name(st.kind);
    if (layer >= 0) {
      for (const LayerOverride& o : config_.layers) {
        if (layer < o.first || layer > o.last) continue;
        if (auto it = o.stages.find(st.name); it != o.stages.end()) return &it->second;
        if (auto it = o.stages.find(kind); it != o.stages.end()) return &it->second;
      }
    }
    if (auto it = config_.stages.find(st.name); it != config_.stages.end()) return &it->second;
    if (auto it = config_.stages.find(kind); it != config_.stages.end()) return &it->second;
    return nullptr;
  }

  StageContext context_for(const GraphNode& n) const {
    StageContext ctx;
    ctx.model = &model_;
    ctx.hp = hp_;
    ctx.layer = n.layer;
    ctx.station = n.station;
    ctx.tensors = n.tensors;
    ctx.params = n.params;
    ctx.max_batch_tokens = config_.runtime.max_batch_tokens;
    return ctx;
  }

  GraphNode place(const StationSpec& st, int32_t layer) {
    GraphNode n;
    n.station = st.name;
    n.kind = st.kind;
    n.layer = layer;
    const StageChoice* choice = choice_for(st, layer);
    n.backend = is_host_kind(st.kind) ? "any"
                : (choice && !choice->backend.empty()) ? choice->backend
                                                       : config_.runtime.backend;
    bind_tensors(st, n);
    const std::string where = station_label(st, layer);
    const std::map<std::string, ConfigValue> no_params;
    const auto& given = choice ? choice->params : no_params;
    if (choice && !choice->variant.empty()) {
      n.impl = reg_.find(st.kind, choice->variant, n.backend);
      if (!n.impl) throw Error(config_error(choice->variant_pos, unknown_variant(st.kind, choice->variant, n.backend, where)));
      n.chosen_by = "config " + choice->variant_pos.str();
      n.params = validate_params(given, n.impl->entry.params, where);
      if (auto reasons = unsupported(*n.impl, n); !reasons.empty())
        throw Error(config_error(choice->variant_pos, where + ": " +
                                                          stage_key_string(st.kind, n.impl->entry.variant, n.backend) +
                                                          " cannot serve this model: " + join(reasons, "; ")));
      return n;
    }
    // Nothing named: the template's default when it can serve the station, else the best-ranked
    // entry that can (e.g. a model with a sliding window, which the default attention refuses).
    std::string fallback = "rank";
    if (const RegisteredStage* def = reg_.find(st.kind, st.default_variant, n.backend)) {
      n.impl = def;
      n.params = validate_params(given, def->entry.params, where);
      auto reasons = unsupported(*def, n);
      if (reasons.empty()) {
        n.chosen_by = "model template";
        return n;
      }
      fallback = "rank (the template's " + st.default_variant + " cannot serve: " + join(reasons, "; ") + ")";
      n.impl = nullptr;
      n.params = Params{};
    }
    n = place_by_rank(st, n, where, choice);
    n.chosen_by = fallback;
    return n;
  }

  GraphNode place_by_rank(const StationSpec& st, GraphNode n, const std::string& where, const StageChoice* choice) {
    std::vector<std::string> refused;
    const RegisteredStage* best = nullptr;
    for (const RegisteredStage* e : reg_.stages(st.kind)) {
      if (e->entry.backend != n.backend) continue;
      if (auto reasons = unsupported(*e, n); !reasons.empty()) {
        refused.push_back(e->entry.variant + ": " + join(reasons, "; "));
        continue;
      }
      if (!best || e->entry.rank > best->entry.rank) best = e;
    }
    if (!best) {
      std::string msg = where + ": no " + stage_kind_name(st.kind) + " implementation on backend '" + n.backend + "'";
      if (!refused.empty()) msg += " can serve this model (" + join(refused, ", ") + ")";
      msg += available_elsewhere(st.kind);
      throw Error(model_.path() + ": " + msg);
    }
    n.impl = best;
    n.chosen_by = "rank";
    n.params = validate_params(choice ? choice->params : std::map<std::string, ConfigValue>{}, best->entry.params,
                               where);
    return n;
  }

  std::vector<std::string> unsupported(const RegisteredStage& e, const GraphNode& n) const {
    std::vector<std::string> reasons;
    if (e.entry.supports) {
      try {
        reasons = e.entry.supports(context_for(n));
      } catch (const std::exception& ex) {
        reasons.push_back(std::string("its check failed: ") + ex.what());
      }
    }
    // Weight types are checked here once for every entry, from its declared capabilities.
    for (const auto& [role, name] : n.tensors) {
      const Tensor* t = model_.weight(name);
      if (!t || e.entry.caps.weight_dtypes.empty()) continue;
      const auto& ok = e.entry.caps.weight_dtypes;
      if (std::find(ok.begin(), ok.end(), t->dtype) == ok.end())
        reasons.push_back(std::string("tensor '") + name + "' is " + dtype_name(t->dtype) + ", not a type it accepts");
    }
    return reasons;
  }

  void bind_tensors(const StationSpec& st, GraphNode& n) {
    const std::string arch = hp_->arch;
    for (const TensorBinding& b : st.tensors) {
      std::string name = substitute_layer(b.pattern, n.layer);
      const Tensor* t = model_.weight(name);
      if (!t) {
        if (b.optional) continue;
        throw Error(model_.path() + ": tensor '" + name + "' (" + station_label(st, n.layer) + ", role '" + b.role +
                    "') is missing");
      }
      if (!b.shape.empty()) {
        std::vector<int64_t> want, have(t->ne, t->ne + t->ndim);
        for (const std::string& d : b.shape) want.push_back(eval_dim(*hp_, d, arch));
        while (have.size() > want.size() && have.back() == 1) have.pop_back();
        if (want != have)
          throw Error(model_.path() + ": tensor '" + name + "' has shape " + shape_string(have) + ", expected " +
                      shape_string(want) + " (" + join(b.shape, " x ") + ") for " + station_label(st, n.layer));
      }
      n.tensors.emplace_back(b.role, std::move(name));
    }
  }

  GraphNode tokenizer() {
    StationSpec st{"tokenizer", StageKind::Tokenizer, "", {}};
    GraphNode n;
    n.station = "tokenizer";
    n.kind = StageKind::Tokenizer;
    n.backend = "any";
    auto it = config_.stages.find("tokenizer");
    const StageChoice* choice = it == config_.stages.end() ? nullptr : &it->second;
    if (choice && !choice->variant.empty()) {
      n.impl = reg_.find(StageKind::Tokenizer, choice->variant, "any");
      if (!n.impl)
        throw Error(config_error(choice->variant_pos, unknown_variant(StageKind::Tokenizer, choice->variant, "any", "tokenizer")));
      n.chosen_by = "config " + choice->variant_pos.str();
      n.params = validate_params(choice->params, n.impl->entry.params, "stages.tokenizer");
      if (auto reasons = unsupported(*n.impl, n); !reasons.empty())
        throw Error(config_error(choice->variant_pos, "tokenizer '" + choice->variant + "' cannot read this model: " + join(reasons, "; ")));
      return n;
    }
    n = place_by_rank(st, n, "tokenizer", choice);
    n.chosen_by = "model tokenizer";
    return n;
  }

  std::vector<GraphNode> place_samplers() {
    auto it = config_.stages.find("sampler");
    const StageChoice* choice = it == config_.stages.end() ? nullptr : &it->second;
    std::vector<std::string> chain = {"greedy"};
    SourcePos chain_pos = choice ? choice->pos : SourcePos{};
    std::map<std::string, ConfigValue> given = choice ? choice->params : std::map<std::string, ConfigValue>{};
    if (choice && !choice->variant.empty())
      throw Error(config_error(choice->variant_pos, "the sampler is a chain: write chain = [\"" + choice->variant +
                                                        "\", ...] instead of variant"));
    if (auto c = given.find("chain"); c != given.end()) {
      const auto* list = std::get_if<std::vector<std::string>>(&c->second.value);
      if (!list || list->empty())
        throw Error(config_error(c->second.pos, "stages.sampler.chain must be a non-empty array of sampler names"));
      chain = *list;
      chain_pos = c->second.pos;
      given.erase(c);
    }
    // Every parameter must belong to some sampler in the chain. A plain key goes to every member
    // that declares it (repeat_last_n to each penalty); "member.key" (from a table named after a
    // member) to that member alone, over a plain one.
    std::vector<GraphNode> nodes;
    std::set<std::string> used;
    for (const std::string& name : chain) {
      const RegisteredStage* e = reg_.find(StageKind::Sampler, name, "any");
      if (!e) throw Error(config_error(chain_pos, unknown_variant(StageKind::Sampler, name, "any", "stages.sampler.chain")));
      std::map<std::string, ConfigValue> mine;
      for (const ParamSpec& p : e->entry.params)
        if (auto g = given.find(p.name); g != given.end()) {
          mine.insert(*g);
          used.insert(p.name);
        }
      const std::string prefix = name + ".";
      for (auto g = given.lower_bound(prefix); g != given.end() && g->first.starts_with(prefix); ++g) {
        mine[g->first.substr(prefix.size())] = g->second;  // validate_params names an unknown one
        used.insert(g->first);
      }
      GraphNode n;
      n.station = "sampler." + name;
      n.kind = StageKind::Sampler;
      n.backend = "any";
      n.impl = e;
      n.chosen_by = chain_pos.line ? "config " + chain_pos.str() : "default chain";
      n.params = validate_params(mine, e->entry.params, "stages.sampler (" + name + ")");
      nodes.push_back(std::move(n));
    }
    for (const auto& [key, v] : given) {
      if (used.count(key)) continue;
      if (const size_t dot = key.find('.'); dot != std::string::npos)
        throw Error(config_error(v.pos, "stages.sampler." + key.substr(0, dot) + ": '" + key.substr(0, dot) +
                                            "' is not in the chain [" + join(chain) +
                                            "]; a table in [stages.sampler] holds the parameters of a member of the chain"));
      std::vector<std::string> known = {"chain"};
      std::string owners;
      for (const RegisteredStage* e : reg_.stages(StageKind::Sampler))
        for (const ParamSpec& p : e->entry.params) {
          known.push_back(p.name);
          if (p.name == key) owners += (owners.empty() ? "" : ", ") + e->entry.variant;
        }
      if (!owners.empty())
        throw Error(config_error(v.pos, "stages.sampler." + key + " belongs to sampler " + owners +
                                            ", which is not in the chain [" + join(chain) + "]"));
      throw Error(config_error(v.pos, "unknown sampler parameter '" + key + "'" + did_you_mean(key, known) +
                                          "; the chain [" + join(chain) + "] takes: " + chain_params(nodes)));
    }
    if (nodes.empty() || !nodes.back().impl) throw Error("empty sampler chain");
    return nodes;
  }

  static std::string chain_params(const std::vector<GraphNode>& nodes) {
    std::vector<std::string> names = {"chain"};
    for (const GraphNode& n : nodes)
      for (const ParamSpec& p : n.impl->entry.params) names.push_back(p.name);
    return join(names);
  }

  std::string station_label(const StationSpec& st, int32_t layer) const {
    return layer >= 0 ? "block " + std::to_string(layer) + " " + st.name : st.name;
  }

  std::string unknown_variant(StageKind kind, const std::string& variant, const std::string& backend,
                              const std::string& where) const {
    std::vector<std::string> here;
    for (const RegisteredStage* e : reg_.stages(kind))
      if (e->entry.backend == backend) here.push_back(e->entry.variant);
    std::string msg = "unknown variant '" + variant + "' for " + stage_kind_name(kind);
    if (backend != "any") msg += " on " + backend;
    msg += " (" + where + ")" + did_you_mean(variant, here) + "; available: " + (here.empty() ? "none" : join(here));
    std::vector<std::string> other;
    for (const RegisteredStage* e : reg_.stages(kind))
      if (e->entry.variant == variant && e->entry.backend != backend) other.push_back(e->entry.backend);
    if (!other.empty()) msg += "; '" + variant + "' exists on backend " + join(other);
    return msg;
  }

  std::string available_elsewhere(StageKind kind) const {
    std::vector<std::string> all;
    for (const RegisteredStage* e : reg_.stages(kind)) all.push_back(e->entry.variant + "@" + e->entry.backend);
    return "; registered " + std::string(stage_kind_name(kind)) + " entries: " + (all.empty() ? "none" : join(all));
  }

  std::string unknown_backend(const std::string& b) const {
    std::vector<std::string> names;
    for (const RegisteredBackend* e : reg_.backends()) names.push_back(e->entry.name);
    std::string msg = "backend '" + b + "' is not registered" + did_you_mean(b, names) +
                      "; available: " + (names.empty() ? "none" : join(names));
    return config_.runtime.backend == b ? config_error(config_.runtime.backend_pos, msg) : msg;
  }

  const Config& config_;
  const ModelView& model_;
  const StageRegistry& reg_;
  const HParams* hp_ = nullptr;
};

std::string node_label(const GraphNode& n) {
  std::string s = std::string(stage_kind_name(n.kind)) + " " + n.impl->entry.variant;
  if (n.backend != "any") s += "@" + n.backend;
  for (const auto& [k, v] : n.params.values) s += " " + k + "=" + param_value_string(v);
  return s;
}

// Consecutive blocks with the same placements print as one group.
std::string block_signature(const std::vector<GraphSublayer>& block) {
  std::string s;
  for (const GraphSublayer& sub : block)
    s += node_label(sub.norm) + "|" + node_label(sub.op) + "|" + (sub.post_norm ? node_label(*sub.post_norm) : "") + "|";
  return s;
}

template <class Fn>
void for_each_block_group(const PipelineGraph& g, Fn fn) {
  size_t start = 0;
  for (size_t l = 1; l <= g.blocks.size(); ++l) {
    if (l == g.blocks.size() || block_signature(g.blocks[l]) != block_signature(g.blocks[start])) {
      fn(start, l - 1, g.blocks[start]);
      start = l;
    }
  }
}

}  // namespace

namespace {

// "an integer in 1..4096", "a number in 0..1", "a number >= 0": a parameter's range as a user
// would write its values.
std::string range_string(const ParamSpec& spec) {
  const bool ints = spec.type == ParamType::Int || spec.type == ParamType::IntList;
  auto bound = [&](double v) { return ints ? std::to_string(static_cast<int64_t>(v)) : param_value_string(v); };
  std::string s = ints ? "an integer" : "a number";
  if (spec.min && spec.max) return s + " in " + bound(*spec.min) + ".." + bound(*spec.max);
  if (spec.min) return s + " >= " + bound(*spec.min);
  return s + " <= " + bound(*spec.max);
}

// The value converted to the declared type where TOML's typing is narrower than the schema's: an
// integer for a float, integers for floats in a list, and an empty array (TOML gives it no element
// type) for any list. Anything else is returned as given, for the type check to refuse.
ParamValue as_declared(const ParamValue& v, ParamType type) {
  if (type == ParamType::Float)
    if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (type == ParamType::FloatList)
    if (const auto* l = std::get_if<std::vector<int64_t>>(&v)) return std::vector<double>(l->begin(), l->end());
  if (const auto* l = std::get_if<std::vector<std::string>>(&v); l && l->empty()) {
    if (type == ParamType::IntList) return std::vector<int64_t>{};
    if (type == ParamType::FloatList) return std::vector<double>{};
  }
  return v;
}

}  // namespace

Params validate_params(const std::map<std::string, ConfigValue>& given, const std::vector<ParamSpec>& schema,
                       const std::string& where) {
  Params out;
  for (const ParamSpec& p : schema) out.values[p.name] = p.default_value;
  std::vector<std::string> names;
  for (const ParamSpec& p : schema) names.push_back(p.name);
  for (const auto& [key, cv] : given) {
    // Named through an init-capture: clang before 16 cannot capture a structured binding.
    auto spec = std::find_if(schema.begin(), schema.end(), [&name = key](const ParamSpec& p) { return p.name == name; });
    if (spec == schema.end())
      throw Error(config_error(cv.pos, "unknown parameter '" + key + "' for " + where + did_you_mean(key, names) +
                                           "; parameters: " + (names.empty() ? "none" : join(names))));
    const ParamValue v = as_declared(cv.value, spec->type);
    if (v.index() != static_cast<size_t>(spec->type))
      throw Error(config_error(cv.pos, where + ": " + key + " = " + param_value_string(cv.value) + " must be of type " +
                                           param_type_name(spec->type) + " (" + spec->doc + ")"));
    for (double num : param_numbers(v))
      if ((spec->min && num < *spec->min) || (spec->max && num > *spec->max))
        throw Error(config_error(cv.pos, where + ": " + key + " = " + param_value_string(cv.value) +
                                             " is out of range; expected " + range_string(*spec) +
                                             (v.index() >= static_cast<size_t>(ParamType::IntList) ? " for each element" : "") +
                                             " (" + spec->doc + ")"));
    if (!spec->choices.empty()) {
      std::vector<std::string> items;
      if (auto* s = std::get_if<std::string>(&v)) items = {*s};
      if (auto* l = std::get_if<std::vector<std::string>>(&v)) items = *l;
      for (const std::string& item : items)
        if (std::find(spec->choices.begin(), spec->choices.end(), item) == spec->choices.end())
          throw Error(config_error(cv.pos, where + ": " + key + " = '" + item + "' is not valid" +
                                               did_you_mean(item, spec->choices) + "; choices: " + join(spec->choices)));
    }
    out.values[key] = v;
  }
  return out;
}

PipelineGraph build_graph(const Config& config, const ModelView& model, const StageRegistry& registry) {
  return GraphBuilder(config, model, registry).build();
}

GraphNode place_tokenizer(const Config& config, const ModelView& model, const StageRegistry& registry) {
  return GraphBuilder(config, model, registry).tokenizer_only();
}

std::vector<const GraphNode*> PipelineGraph::nodes() const {
  std::vector<const GraphNode*> v = {&tokenizer, &embedding};
  for (const auto& block : blocks)
    for (const GraphSublayer& sub : block) {
      v.push_back(&sub.norm);
      v.push_back(&sub.op);
      if (sub.post_norm) v.push_back(&*sub.post_norm);
    }
  v.push_back(&output_norm);
  v.push_back(&head);
  for (const GraphNode& s : sampler_chain) v.push_back(&s);
  return v;
}

std::string PipelineGraph::to_text() const {
  std::string s = "model     " + model_path + "\n";
  s += "arch      " + arch->entry.name + " (" + arch->entry.description + ")\n";
  s += "shape     n_embd " + std::to_string(hp.n_embd) + ", n_ff " + std::to_string(hp.n_ff) + ", n_layer " +
       std::to_string(hp.n_layer) + ", n_head " + std::to_string(hp.n_head) + ", n_head_kv " +
       std::to_string(hp.n_head_kv) + ", head_dim " + std::to_string(hp.head_dim) + ", n_vocab " +
       std::to_string(hp.n_vocab) +
       (hp.n_expert > 0 ? ", n_expert " + std::to_string(hp.n_expert) + " (" + std::to_string(hp.n_expert_used) + " used)"
                        : std::string()) +
       (hp.sliding_window > 0 ? ", sliding_window " + std::to_string(hp.sliding_window) : std::string()) + "\n";
  s += "backends  " + join(backends) + "\n\n";
  auto line = [](const std::string& indent, const GraphNode& n) {
    std::string l = indent + n.station;
    l.resize(std::max<size_t>(l.size() + 1, 16), ' ');
    l += node_label(n);
    l.resize(std::max<size_t>(l.size() + 1, 52), ' ');
    l += "[" + n.impl->plugin + "; " + n.chosen_by + "]\n";
    for (const auto& [role, name] : n.tensors) l += indent + "    " + role + " = " + name + "\n";
    return l;
  };
  s += line("", tokenizer);
  s += line("", embedding);
  for_each_block_group(*this, [&](size_t first, size_t last, const auto& block) {
    s += first == last ? "block " + std::to_string(first) + "\n"
                       : "blocks " + std::to_string(first) + "-" + std::to_string(last) + "\n";
    for (const GraphSublayer& sub : block) {
      // A group lists the tensors of its first block.
      s += line("  ", sub.norm) + line("  ", sub.op);
      if (sub.post_norm) {
        s += line("  ", *sub.post_norm);
        s += "  h += " + sub.post_norm->station + "(" + sub.op.station + "(" + sub.norm.station + "(h)))\n";
      } else {
        s += "  h += " + sub.op.station + "(" + sub.norm.station + "(h))\n";
      }
    }
  });
  s += line("", output_norm);
  s += line("", head);
  for (const GraphNode& n : sampler_chain) s += line("", n);
  return s;
}

std::string PipelineGraph::to_mermaid() const {
  std::string s = "flowchart TD\n";
  auto label = [](const GraphNode& n) { return n.station + "<br/>" + node_label(n); };
  s += "  text([text]) --> tok[\"" + label(tokenizer) + "\"]\n";
  s += "  tok --> emb[\"" + label(embedding) + "\"]\n";
  std::string prev = "emb";
  int group = 0;
  for_each_block_group(*this, [&](size_t first, size_t last, const auto& block) {
    std::string id = "g" + std::to_string(group++);
    std::string title = first == last ? "block " + std::to_string(first)
                                      : "blocks " + std::to_string(first) + "-" + std::to_string(last);
    s += "  subgraph " + id + "[\"" + title + "\"]\n";
    std::string inner_prev;
    for (size_t i = 0; i < block.size(); ++i) {
      std::string nid = id + "n" + std::to_string(i), oid = id + "o" + std::to_string(i);
      s += "    " + nid + "[\"" + label(block[i].norm) + "\"] --> " + oid + "[\"" + label(block[i].op) + "\"]\n";
      if (block[i].post_norm) {
        const std::string pid = id + "p" + std::to_string(i);
        s += "    " + oid + " --> " + pid + "[\"" + label(*block[i].post_norm) + "\"]\n";
        oid = pid;
      }
      if (!inner_prev.empty()) s += "    " + inner_prev + " -- \"+h\" --> " + nid + "\n";
      inner_prev = oid;
    }
    s += "  end\n";
    s += "  " + prev + " --> " + id + "\n";
    prev = id;
  });
  s += "  " + prev + " --> onorm[\"" + label(output_norm) + "\"]\n";
  s += "  onorm --> head[\"" + label(head) + "\"]\n";
  prev = "head";
  for (size_t i = 0; i < sampler_chain.size(); ++i) {
    std::string id = "s" + std::to_string(i);
    s += "  " + prev + " --> " + id + "[\"" + label(sampler_chain[i]) + "\"]\n";
    prev = id;
  }
  s += "  " + prev + " --> token([token])\n";
  return s;
}

}  // namespace semline
