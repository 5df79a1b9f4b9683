// The line, instantiated: backends created, every station of the graph bound to its weights, the
// KV cache allocated. forward() runs one step (any batch) and returns the wanted logits on the host.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <semline/comm.h>

#include "core/engine/kv_cache.h"
#include "core/engine/state_pool.h"
#include "core/engine/parallel.h"
#include "core/graph/graph.h"

namespace semline {

struct PipelineOptions {
  int threads = 0;               // 0: every core
  int32_t max_batch_tokens = 512;
  KvCacheOptions kv;             // context 0 means the model's training context
  std::map<std::string, std::map<std::string, ConfigValue>> backend_params;  // [backends.<name>]
  // Tensor or pipeline parallelism, or a grid of both ([parallel]), over `comm`'s ranks (the caller
  // keeps it alive longer than the pipeline): rank 0 leads, the others follow (Pipeline::follow).
  int tensor = 1, pipeline = 1;  // [parallel]: comm's size is their product
  bool expert_parallel = false;  // [parallel]: whole experts per tensor rank (ShardedModel)
  Communicator* comm = nullptr;
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

  // Runs one step. Returns logits [batch.n_outputs][n_vocab], valid until the next call. On a
  // line split across ranks, only the leader calls it; every rank runs the step.
  std::span<const float> forward(const Batch& batch);

  // Steps in flight (micro-batches). A line split into pipeline stages holds two: while the later
  // stages compute one step, the leader's first stage computes the next, which goes on to them when
  // the first one's logits have come back; any other line holds one. submit() starts a step (its
  // batch may change once it returns); collect() ends the oldest step submitted and returns its
  // logits, valid until the next collect or forward. forward() is the two at once.
  int32_t depth() const { return comm_ && split_.pipeline > 1 ? 2 : 1; }
  void submit(const Batch& batch);
  std::span<const float> collect();

  // A line split across ranks: whether this rank follows a leader (rank > 0), and the follower's loop:
  // runs each step the leader's forward sends until the leader's pipeline is destroyed. A step
  // that fails on any rank stops every rank (Communicator::abort).
  bool follower() const { return comm_ && comm_->rank() > 0; }
  void follow();

  // Per-kind time and cost, when metering is on (it synchronises after every stage).
  void set_metering(bool on) { metering_ = on; }
  const std::map<StageKind, StageMeter>& meters() const { return meters_; }
  // A line split across ranks: time this rank spent sending steps and in all-reduces (waiting for
  // the slowest rank included) and how many all-reduces, summed over steps like the meters.
  double comm_seconds() const { return comm_seconds_; }
  int64_t all_reduces() const { return all_reduces_; }
  void reset_meters() {
    meters_.clear();
    comm_seconds_ = 0;
    all_reduces_ = 0;
  }

 private:
  struct Station;
  struct Activations;
  Backend& backend(const std::string& name);
  int32_t kv_window() const;  // what the KV cache may release behind (KvCacheOptions::window)
  void run(Station& s, const Tensor& in, const Tensor& out, const Step& step);
  std::span<const float> run_step(Batch batch);
  // Across ranks: the leader sends a step (or the end) to the followers; the sum of every rank's
  // rows of an activation (tensor parallelism); rows to or from another rank (pipeline stages).
  std::span<const float> lead_step(const Batch& batch);  // sends the step, runs it; a throw stops every rank
  // A step's message to the other ranks: a header and the step's arrays (see encode_step).
  struct StepMessage {
    int32_t header[5] = {};
    std::vector<int32_t> body;
    int32_t n_tokens() const { return header[1]; }
    int32_t n_outputs() const { return header[3]; }
  };
  static void encode_step(const Batch* batch, StepMessage& m);
  // The step from this stage's tensor rank 0 to the stage's other tensor ranks (patient: as a
  // follower waiting for the next step); to the next stage's tensor rank 0; a follower's, from
  // whichever of the two sends it.
  void share_step(StepMessage& m, bool patient);
  void pass_step(const StepMessage& m);
  void receive_step(StepMessage& m);
  // Pipeline stages: the leader runs its stage of a step and hands it on (at once when no step is
  // in flight, else once the step in flight has come back); collect_stage receives the logits.
  void submit_stage(const Batch& batch);
  std::span<const float> collect_stage();
  void hand_on(StepMessage& m);
  void check_batch(const Batch& batch) const;
  void all_reduce(Backend* on, Buffer& buf, int64_t rows);
  void exchange_rows(Backend* on, Buffer& buf, int64_t floats, int peer, bool send);
  void send_h(int32_t n_tokens);  // this stage's rows of h, to the next stage
  // Whether this rank runs the output norm and head: the last stage; of a tensor split, every rank
  // when the head is split by vocabulary, else the stage's tensor rank 0.
  bool computes_logits() const {
    return split_.last_stage() && (split_.tensor == 1 || head_split_ || split_.tensor_rank() == 0);
  }
  // A vocabulary-split head's rows, onto the logits of the stage's tensor rank 0.
  void gather_logits(int32_t n_outputs);

  PipelineGraph graph_;
  const StageRegistry& registry_;
  Communicator* comm_ = nullptr;         // non-null only when the line is split across ranks
  LineSplit split_;
  // Tensor parallelism's ranks: comm_ itself, or in a grid this stage's ranks (split from comm_).
  std::unique_ptr<Communicator> stage_comm_;
  Communicator* tp_ = nullptr;
  int32_t layer_begin_ = 0, layer_end_ = 0;  // this rank's blocks
  HParams block_hp_;                     // what the block stations see (this rank's share)
  std::unique_ptr<ShardedModel> shard_;  // this rank's share of the block weights
  // Tensor parallelism's head, split by vocabulary where it divides: this rank's rows of the output
  // matrix, the hyper-parameters it sees (n_vocab / ranks), the host rows of its logits and, on the
  // stage's tensor rank 0, every rank's gathered.
  bool head_split_ = false;
  HParams head_hp_;
  std::unique_ptr<ShardedModel> head_shard_;
  std::vector<float> logits_part_, logits_gathered_;
  StepArrays received_;                  // a follower's copy of the leader's step
  StepMessage message_;                  // the step being run (lead_step, follow)
  std::deque<StepMessage> in_stages_;  // handed on to the later stages; logits not yet back
  std::optional<StepMessage> held_;    // run by the leader's stage, not yet handed on
  std::span<const float> landed_;      // a one-stage line's submitted step's logits
  bool has_landed_ = false;
  std::vector<float> rows_host_;  // a device activation's rows on their way to or from another rank
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
  double comm_seconds_ = 0;
  int64_t all_reduces_ = 0;
};

}  // namespace semline
