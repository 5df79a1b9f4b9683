// The draft proposer: a second line over a smaller or more quantised model with the target's
// vocabulary drafts k tokens greedily, then the target verifies them in one step.
//
// The draft line keeps its own paged cache, one sequence per target sequence. Each step it rolls
// that sequence back to what it shares with the target's tokens (the drafts the target rejected
// go: BlockManager::truncate), computes what is new (the tokens the target accepted and sampled),
// and decodes k - 1 more tokens; every sequence that decodes in the step runs in the same batch,
// so a draft step reads the draft's weights once for all of them. Drafts are the draft model's
// most likely tokens: deterministic, so the engine's verification keeps the target's output
// exactly (speculative.h).
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/config/config.h"
#include "core/engine/pipeline.h"
#include "core/engine/speculative.h"
#include "core/model/model_file.h"

namespace semline {

class DraftProposer : public Proposer {
 public:
  explicit DraftProposer(Pipeline& draft);
  ~DraftProposer() override;
  void propose(std::span<DraftRequest> requests) override;
  void release(uint64_t seq) override;

 private:
  struct Seq {
    int32_t kv = -1;
    std::vector<int32_t> cached;  // the tokens whose keys and values the draft cache holds
  };
  struct Feed {
    Seq* seq;
    DraftRequest* request;
    std::vector<int32_t> tokens;  // to compute; the most likely token after the last is drafted
    size_t done = 0;              // of them computed
    bool stopped = false;         // the draft cache had no room: no more drafts this step
  };
  void run(std::vector<Feed>& feeds);
  void forget(Seq& s);

  Pipeline& line_;
  std::unordered_map<uint64_t, Seq> seqs_;
  std::vector<Feed> feeds_;
  StepArrays step_;
};

// speculative.draft_model made into a line with the config's stations and runtime, checked to
// share the target's vocabulary (one error naming the first difference); nullptr when the
// config's proposer is not "draft".
struct DraftLine {
  std::unique_ptr<ModelFile> model;
  PipelineGraph graph;
  std::unique_ptr<Pipeline> pipeline;
};
std::unique_ptr<DraftLine> load_draft(const Config& config, const StageRegistry& registry, const Pipeline& target);

// The vocabularies differ: why, in one sentence (empty when they agree).
std::string vocabulary_difference(const Pipeline& draft, const Pipeline& target);

}  // namespace semline
