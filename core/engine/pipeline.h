// The line, instantiated: backends created, every station of the graph bound to its weights, the
// KV cache allocated. forward() runs one step (any batch) and returns the wanted logits on the host.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/engine/kv_cache.h"
#include "core/engine/state_pool.h"
#include "core/graph/graph.h"

namespace semline {

struct PipelineOptions {
  int threads = 0;               // 0: every core
  int32_t max_batch_tokens = 512;
  KvCacheOptions kv;             // context 0 means the model's training context
  std::map<std::string, std::map<std::string, ConfigValue>> backend_params;  // [backends.<name>]
};

PipelineOptions pipeline_options(const Config& config);

// A tokenizer for a placed tokenizer station (see place_tokenizer); plugin errors are named.
std::unique_ptr<Tokenizer> make_tokenizer(const GraphNode& node, const ModelView& model);

// The host arrays a step's Batch points into, kept from step to step (nothing is allocated per
// token once they have grown): a caller clears them, appends each sequence's tokens, positions,
// sequence index and view and the rows it wants logits of, and takes the Batch.
struct StepArrays {
  std::vector<int32_t> tokens, positions, seq, output_rows;
  std::vector<SeqView> seqs;
  void clear();
  Batch batch() const;  // valid while the arrays are unchanged
};

// Time and analytic work per station kind, summed over steps (for the meters).
struct StageMeter {
  double seconds = 0;
  StageCost cost;
};

class Pipeline {
 public:
  Pipeline(const PipelineGraph& graph, const ModelView& model, const StageRegistry& registry,
           const PipelineOptions& options);
  ~Pipeline();

  const PipelineGraph& graph() const { return graph_; }
  const HParams& hp() const { return graph_.hp; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const StageRegistry& registry() const { return registry_; }
  KvCache& kv() { return *kv_; }
  const KvCache& kv() const { return *kv_; }
  // Whether some layer mixes with a recurrent state (Mamba): its sequences only go forward.
  bool recurrent() const { return !state_->empty(); }
  StatePool& state() { return *state_; }
  int32_t max_batch_tokens() const { return max_batch_; }

  // Runs one step. Returns logits [batch.n_outputs][n_vocab], valid until the next call.
  std::span<const float> forward(const Batch& batch);

  // Per-kind time and cost, when metering is on (it synchronises after every stage).
  void set_metering(bool on) { metering_ = on; }
  const std::map<StageKind, StageMeter>& meters() const { return meters_; }
  void reset_meters() { meters_.clear(); }

 private:
  struct Station;
  struct Activations;
  Backend& backend(const std::string& name);
  int32_t kv_window() const;  // what the KV cache may release behind (KvCacheOptions::window)
  void run(Station& s, const Tensor& in, const Tensor& out, const Step& step);

  PipelineGraph graph_;
  const StageRegistry& registry_;
  int32_t max_batch_;
  std::map<std::string, std::unique_ptr<Backend>> backends_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<Station> stations_;  // line order: embedding, blocks (norm, op)..., output norm, head
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<StatePool> state_;
  std::unique_ptr<Activations> act_;
  std::vector<float> logits_;
  uint64_t step_ = 0;
  bool metering_ = false;
  std::map<StageKind, StageMeter> meters_;
};

}  // namespace semline
