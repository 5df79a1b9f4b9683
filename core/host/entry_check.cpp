#include "core/host/entry_check.h"

#include <algorithm>
#include <set>
#include <string>

#include "core/host/registry.h"
#include "core/util/text.h"

namespace semline {
namespace {

// Names become parts of dotted keys ("attention.flash.cpu") and TOML values, so they are limited
// to characters that need no quoting and cannot be confused with the separator.
bool is_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}
const char* const kNameRule = "use letters, digits, '_' or '-'";

void check_name(std::string_view what, std::string_view name, std::string_view subject) {
  if (!is_name(name))
    throw Error(std::string(subject) + ": " + std::string(what) + " '" + std::string(name) + "' is not a valid name; " +
                kNameRule);
}

void check_line(std::string_view what, std::string_view text, std::string_view subject) {
  if (text.empty()) throw Error(std::string(subject) + ": " + std::string(what) + " is empty; give one line");
  if (text.find('\n') != std::string_view::npos)
    throw Error(std::string(subject) + ": " + std::string(what) + " spans several lines; give one line");
}

bool is_numeric(ParamType t) {
  return t == ParamType::Int || t == ParamType::Float || t == ParamType::IntList || t == ParamType::FloatList;
}
bool is_textual(ParamType t) { return t == ParamType::String || t == ParamType::StringList; }

void check_param(const ParamSpec& p, const std::string& subject) {
  const std::string where = subject + ": parameter '" + p.name + "'";
  check_name("parameter name", p.name, subject);
  check_line("the doc of parameter '" + p.name + "'", p.doc, subject);
  // ParamValue's alternatives are declared in ParamType's order.
  const auto declared = static_cast<size_t>(p.type);
  if (declared >= std::variant_size_v<ParamValue>)
    throw Error(where + " has an unknown type (" + std::to_string(declared) + ")");
  if (p.default_value.index() != declared)
    throw Error(where + " is declared " + param_type_name(p.type) + " but its default " +
                param_value_string(p.default_value) + " is " +
                param_type_name(static_cast<ParamType>(p.default_value.index())));
  if ((p.min || p.max) && !is_numeric(p.type))
    throw Error(where + " is " + param_type_name(p.type) + "; only int and float parameters (and their lists) take min/max");
  if (p.min && p.max && *p.min > *p.max)
    throw Error(where + ": min " + std::to_string(*p.min) + " is above max " + std::to_string(*p.max));
  for (const double d : param_numbers(p.default_value)) {
    if ((p.min && d < *p.min) || (p.max && d > *p.max))
      throw Error(where + ": default " + param_value_string(p.default_value) + " is outside its range [" +
                  (p.min ? std::to_string(*p.min) : "-inf") + ", " + (p.max ? std::to_string(*p.max) : "inf") + "]");
  }
  if (!p.choices.empty()) {
    if (!is_textual(p.type))
      throw Error(where + " is " + param_type_name(p.type) + "; only string parameters take choices");
    std::vector<std::string> values;
    if (const auto* s = std::get_if<std::string>(&p.default_value)) values.push_back(*s);
    else values = std::get<std::vector<std::string>>(p.default_value);
    for (const auto& v : values)
      if (std::find(p.choices.begin(), p.choices.end(), v) == p.choices.end())
        throw Error(where + ": default '" + v + "' is not one of its choices");
  }
}

void check_params(const std::vector<ParamSpec>& params, const std::string& subject) {
  std::set<std::string> seen;
  for (const auto& p : params) {
    check_param(p, subject);
    if (!seen.insert(p.name).second) throw Error(subject + ": parameter '" + p.name + "' is declared twice");
  }
}

bool is_host_station(StageKind k) { return k == StageKind::Tokenizer || k == StageKind::Sampler; }

bool is_known_kind(StageKind k) {
  return std::find(std::begin(kAllStageKinds), std::end(kAllStageKinds), k) != std::end(kAllStageKinds);
}

void check_station(const StationSpec& s, const std::string& subject, std::initializer_list<StageKind> kinds) {
  const std::string where = subject + ": station '" + s.name + "'";
  check_name("station name", s.name, subject);
  if (std::find(kinds.begin(), kinds.end(), s.kind) == kinds.end()) {
    std::string valid;
    for (StageKind k : kinds) valid += std::string(valid.empty() ? "" : " or ") + stage_kind_name(k);
    throw Error(where + " has kind " + (is_known_kind(s.kind) ? stage_kind_name(s.kind) : "?") +
                "; this place of the line takes " + valid);
  }
  check_name("default variant of station '" + s.name + "'", s.default_variant, subject);
  for (const auto& t : s.tensors) {
    check_name("tensor role of station '" + s.name + "'", t.role, subject);
    if (t.pattern.empty()) throw Error(where + ": role '" + t.role + "' has no tensor name pattern");
  }
}

}  // namespace

void check_plugin_name(std::string_view name) {
  if (!is_name(name)) throw Error("plugin name '" + std::string(name) + "' is not a valid name; " + kNameRule);
}

void check_stage_entry(const StageEntry& e) {
  if (!is_known_kind(e.kind))
    throw Error("stage entry '" + e.variant + "' on '" + e.backend + "' has an unknown kind (" +
                std::to_string(static_cast<uint32_t>(e.kind)) + ")");
  const char* kind = stage_kind_name(e.kind);
  const std::string subject = "stage entry " + stage_key_string(e.kind, e.variant, e.backend);
  check_name(std::string(kind) + " variant", e.variant, subject);
  check_name("backend", e.backend, subject);
  if (is_host_station(e.kind) != (e.backend == "any"))
    throw Error(subject + ": " + (is_host_station(e.kind)
                                      ? std::string(kind) + " entries run on the host; their backend is \"any\""
                                      : "backend \"any\" is only for tokenizers and samplers; name the backend"));
  check_line("description", e.description, subject);
  check_params(e.params, subject);
  if (e.caps.max_head_dim < 0)
    throw Error(subject + ": capability max_head_dim " + std::to_string(e.caps.max_head_dim) +
                " is negative; 0 means no limit");
  for (DType t : e.caps.weight_dtypes)
    if (!dtype_is_known(static_cast<uint32_t>(t)))
      throw Error(subject + ": capability weight_dtypes holds unknown type id " + std::to_string(static_cast<uint32_t>(t)));

  std::vector<std::string> set;
  if (e.make_stage) set.push_back("make_stage");
  if (e.make_tokenizer) set.push_back("make_tokenizer");
  if (e.make_sampler) set.push_back("make_sampler");
  const char* wanted = e.kind == StageKind::Tokenizer ? "make_tokenizer"
                       : e.kind == StageKind::Sampler ? "make_sampler"
                                                      : "make_stage";
  if (set.size() != 1 || set[0] != wanted)
    throw Error(subject + ": a " + kind + " entry sets exactly one factory, " + wanted + " (it sets " +
                (set.empty() ? "none" : join(set)) + ")");
}

void check_backend_entry(const BackendEntry& e) {
  const std::string subject = "backend '" + e.name + "'";
  check_name("backend name", e.name, "backend entry");
  if (e.name == "any") throw Error("backend entry: the name \"any\" is reserved for host stations");
  check_line("description", e.description, subject);
  check_params(e.params, subject);
  if (!e.create) throw Error(subject + ": has no create function");
}

void check_proposer_entry(const ProposerEntry& e) {
  const std::string subject = "proposer '" + e.name + "'";
  check_name("proposer name", e.name, "proposer entry");
  for (const char* own : {"none", "ngram", "draft"})
    if (e.name == own) throw Error(subject + ": the name is the engine's own proposer's");
  check_line("description", e.description, subject);
  check_params(e.params, subject);
  // Its parameters are keys of [speculative], beside the engine's own.
  for (const ParamSpec& p : e.params)
    for (const char* own : {"proposer", "k", "adaptive", "ngram_min", "ngram_max", "draft_model"})
      if (p.name == own) throw Error(subject + ": parameter '" + p.name + "' is a key of [speculative] already");
  if (!e.make) throw Error(subject + ": has no make function");
}

void check_comm_entry(const CommEntry& e) {
  const std::string subject = "communicator '" + e.name + "'";
  check_name("communicator name", e.name, "communicator entry");
  check_line("description", e.description, subject);
  check_params(e.params, subject);
  // Its parameters are keys of [parallel], beside the core's own.
  for (const ParamSpec& p : e.params)
    for (const char* own : {"tensor", "pipeline", "comm", "expert_parallel"})
      if (p.name == own) throw Error(subject + ": parameter '" + p.name + "' is a key of [parallel] already");
  if (!e.create) throw Error(subject + ": has no create function");
}

void check_arch(const ArchTemplate& a) {
  const std::string subject = "architecture template '" + a.name + "'";
  check_name("architecture name", a.name, "architecture template");
  check_line("description", a.description, subject);
  if (!a.read_hparams) throw Error(subject + ": has no read_hparams function");
  if (a.block.empty()) throw Error(subject + ": its block has no sub-layers");
  if (!a.other_blocks.empty() && !a.block_of) throw Error(subject + ": has other blocks and no block_of function");
  check_station(a.embedding, subject, {StageKind::Embedding});
  for (const auto* block : all_blocks(a)) {
    if (block->empty()) throw Error(subject + ": one of its blocks has no sub-layers");
    for (const auto& sub : *block) {
      check_station(sub.norm, subject, {StageKind::Norm});
      check_station(sub.op, subject, {StageKind::Attention, StageKind::Ssm, StageKind::Ffn});
    }
  }
  check_station(a.output_norm, subject, {StageKind::Norm});
  check_station(a.head, subject, {StageKind::Head});
}

}  // namespace semline
