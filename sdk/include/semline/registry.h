// semline SDK — what a plugin registers: stage entries, backends, architecture templates,
// speculative decoding proposers, communicators.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "semline/backend.h"
#include "semline/comm.h"
#include "semline/model.h"
#include "semline/params.h"
#include "semline/proposer.h"
#include "semline/stage.h"

namespace semline {

// What an implementation can do, shown by `semline plugins` and used when building the graph.
struct Capabilities {
  std::vector<DType> weight_dtypes;  // weight types it accepts; empty: none needed
  int64_t max_head_dim = 0;          // 0: no limit
  bool exact = true;                 // false for approximations of the dense reference
};

// Answers "can this entry serve this station?" with the reasons it cannot (empty: it can).
using SupportsFn = std::function<std::vector<std::string>(const StageContext&)>;

// One implementation of a station: key (kind, variant, backend); backend is "any" for host
// stations (tokenizer, sampler). Exactly one factory, the one of its kind, is set.
// Every member has a default, so an entry can be written with designated initializers naming
// only what it sets: r.add_stage({.kind = StageKind::Norm, .variant = "rms", ...}).
struct StageEntry {
  StageKind kind = StageKind::Norm;
  std::string variant{};
  std::string backend{};
  std::string description{};        // one line
  std::vector<ParamSpec> params{};  // what the config may set
  Capabilities caps{};
  int rank = 0;                     // preference when the config names no variant: highest wins
  SupportsFn supports{};            // optional; absent means always
  std::function<std::unique_ptr<Stage>(const StageContext&)> make_stage{};          // transform kinds
  std::function<std::unique_ptr<Tokenizer>(const StageContext&)> make_tokenizer{};  // tokenizer
  std::function<std::unique_ptr<Sampler>(const StageContext&)> make_sampler{};      // sampler
};

struct BackendEntry {
  std::string name;  // "cpu", "vulkan", ...
  std::string description;
  std::vector<ParamSpec> params;
  // Reasons this backend cannot run on this machine (missing CPU features, no device); empty: ok.
  std::function<std::vector<std::string>()> probe;
  std::function<std::unique_ptr<Backend>(const Params&, const LogFn&)> create;
};

// A speculative decoding proposer, chosen by name: [speculative] proposer = "<name>", its
// parameters as further keys of [speculative]. The engine's own are "none", "ngram" and "draft".
struct ProposerEntry {
  std::string name;
  std::string description;  // one line
  std::vector<ParamSpec> params;
  std::function<std::unique_ptr<Proposer>(const ProposerContext&)> make;
};

// ---------------------------------------------------------------------------------------------
// Architecture templates: a model family as data. The core walks a template; it never names a
// variant or a family.

// A weight a station binds: its role for the stage, the tensor name in the file ("{L}" is
// replaced by the block index) and its expected shape, innermost first, each dimension an integer
// or a product of HParams field names ("n_head*head_dim"); an empty shape is not checked.
struct TensorBinding {
  std::string role;
  std::string pattern;
  std::vector<std::string> shape;
  bool optional = false;  // absent from the file is fine (e.g. an untied output matrix)
};

// One station: a stage kind, its default variant, and its weights.
struct StationSpec {
  std::string name;  // e.g. "attn_norm"
  StageKind kind = StageKind::Norm;
  std::string default_variant;
  std::vector<TensorBinding> tensors;
};

// A pre-norm residual sub-layer of a block: h += op(norm(h)); with a post norm (5.0; Gemma 2's
// sandwich) h += post_norm(op(norm(h))).
struct SublayerSpec {
  SublayerSpec(StationSpec n, StationSpec o, std::optional<StationSpec> post = std::nullopt)
      : norm(std::move(n)), op(std::move(o)), post_norm(std::move(post)) {}
  StationSpec norm;
  StationSpec op;
  std::optional<StationSpec> post_norm;
};

struct ArchTemplate {
  std::string name;         // general.architecture value it serves, e.g. "llama"
  std::string description;
  StationSpec embedding;
  std::vector<SublayerSpec> block;  // repeated n_layer times, unless block_of says otherwise
  // Hybrids (7.0; Jamba: attention on some layers, a recurrent mixer on the others): the other
  // blocks a layer may have, and which one layer L has (0: `block`, i: other_blocks[i - 1]). Both
  // empty for a family whose layers are all alike.
  std::vector<std::vector<SublayerSpec>> other_blocks;
  std::function<size_t(const HParams&, int32_t layer)> block_of;
  StationSpec output_norm;
  StationSpec head;
  // Hyper-parameters from the model's metadata; throws semline::Error naming a missing or bad key.
  std::function<HParams(const ModelView&)> read_hparams;
  // Every "{arch}.*" metadata key the family understands, without the "{arch}." prefix: the keys
  // read_hparams honours and those known not to change the computation. The loader refuses a
  // model with any other "{arch}.*" key, naming it: a key that may change what the model computes
  // is never silently ignored. (general.* and tokenizer.* keys belong to other stations.)
  std::vector<std::string> metadata_keys;
};

// Every block of a template: `block`, then its other blocks.
inline std::vector<const std::vector<SublayerSpec>*> all_blocks(const ArchTemplate& a) {
  std::vector<const std::vector<SublayerSpec>*> v = {&a.block};
  for (const auto& b : a.other_blocks) v.push_back(&b);
  return v;
}

// The host's registry as plugins see it. Entries added by a plugin whose registration throws are
// discarded together.
class Registry {
 public:
  virtual ~Registry() = default;
  virtual void add_stage(StageEntry e) = 0;
  virtual void add_backend(BackendEntry e) = 0;
  virtual void add_arch(ArchTemplate a) = 0;
  virtual void log(LogLevel level, std::string_view message) = 0;
  virtual void add_proposer(ProposerEntry e) = 0;  // 3.0
  virtual void add_comm(CommEntry e) = 0;  // 8.0
};

}  // namespace semline
