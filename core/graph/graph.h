// The pipeline graph: the model's architecture template walked with the config's choices, every
// station resolved to one registered (kind, variant, backend) entry, its parameters validated and
// its weights bound and shape-checked. Building it is pure: nothing is loaded onto a backend.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <semline/registry.h>

#include "core/config/config.h"
#include "core/host/registry.h"

namespace semline {

// One placed station.
struct GraphNode {
  std::string station;   // template station name, e.g. "attention"
  StageKind kind = StageKind::Norm;
  int32_t layer = -1;    // block index, -1 outside the blocks
  const RegisteredStage* impl = nullptr;
  std::string backend;   // where it runs ("any" for host stations)
  std::string chosen_by; // "config file:line:col", "model template", "model tokenizer", "rank"
  Params params;
  std::vector<std::pair<std::string, std::string>> tensors;  // role -> tensor name in the file
};

// Sub-layer i of a block: h += op(norm(h)), or h += post_norm(op(norm(h))) with a post norm.
struct GraphSublayer {
  GraphNode norm, op;
  std::optional<GraphNode> post_norm;
};

struct PipelineGraph {
  std::string model_path;
  const RegisteredArch* arch = nullptr;
  HParams hp;
  GraphNode tokenizer;
  GraphNode embedding;
  // blocks[L][i] is sub-layer i of block L.
  std::vector<std::vector<GraphSublayer>> blocks;
  GraphNode output_norm;
  GraphNode head;
  std::vector<GraphNode> sampler_chain;
  std::vector<std::string> backends;  // every backend a station runs on, in first-use order

  // Stations in line order (tokenizer, embedding, blocks, output norm, head, samplers).
  std::vector<const GraphNode*> nodes() const;
  std::string to_text() const;
  std::string to_mermaid() const;
};

// Builds and validates the graph; throws semline::Error naming the config position or the model
// tensor at fault and listing what would be valid.
PipelineGraph build_graph(const Config& config, const ModelView& model, const StageRegistry& registry);

// The tokenizer station alone (the config's choice, else the best-ranked entry that can read the
// model's vocabulary): vocabulary-only files have a tokenizer but no line.
GraphNode place_tokenizer(const Config& config, const ModelView& model, const StageRegistry& registry);

// Validates config values against an entry's schema, fills defaults. `where` names the table in
// messages ("stages.attention"). Throws on unknown keys, wrong types and out-of-range values.
Params validate_params(const std::map<std::string, ConfigValue>& given,
                       const std::vector<ParamSpec>& schema, const std::string& where);

}  // namespace semline
