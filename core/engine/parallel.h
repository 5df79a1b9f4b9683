// One line across ranks: which part of the line a rank runs.
//
// Pipeline parallelism: the blocks are cut into consecutive stages; the first stage also embeds,
// the last also norms and projects to logits, and each sends its rows to the next (each of a
// stage's tensor ranks to its peer in the next stage).
//
// Tensor parallelism (Megatron's split): one rank's share of every block. Attention heads and kv
// heads, and the feed-forward width (each expert's, in a mixture), are split evenly across the
// ranks: the column-parallel products (q, k, v, gate, up) keep the rank's rows, the row-parallel
// ones (o, down) the rank's columns, so each rank's sub-layer yields a partial sum of the whole
// result and one all-reduce per sub-layer completes it (Pipeline::forward). Norms, the embedding
// and the router are whole on every rank. The head is split by vocabulary where it divides: each
// rank computes its share of the logits and the stage's tensor rank 0 gathers them (the leader,
// unless a grid's last stage holds the head; that rank sends the logits to the leader).
//
// Expert parallelism, an option of the tensor split: a mixture's experts stay whole and each rank
// holds n_expert / ranks of them (HParams::extra expert_first, expert_count); every rank routes over
// all experts and computes its own, and the same all-reduce sums the parts. Attention is split as
// above.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <semline/model.h>

#include "core/graph/graph.h"

namespace semline {

// A rank's place: `pipeline` stages of consecutive blocks, each shared by `tensor` ranks (a grid of
// ranks when both are above 1). Rank r runs stage r / tensor as its tensor rank r % tensor, so a
// stage's ranks are neighbours (on one host, where mpirun fills hosts in order) and its tensor
// rank 0 leads it.
struct LineSplit {
  int tensor = 1, pipeline = 1;
  int rank = 0;  // among all tensor x pipeline ranks
  int stage() const { return rank / tensor; }
  int tensor_rank() const { return rank % tensor; }
  // The rank of the same tensor rank in another stage.
  int rank_in_stage(int s) const { return s * tensor + tensor_rank(); }
  bool first_stage() const { return stage() == 0; }
  bool last_stage() const { return stage() == pipeline - 1; }
  // The stage's blocks [begin, end): n_layer / pipeline each, the first stages one more while the
  // division leaves some.
  std::pair<int32_t, int32_t> layers(int64_t n_layer) const;
};

// The hyper-parameters one rank's block stations see: n_head, n_head_kv and n_ff divided by the
// number of ranks (with `experts`, n_ff whole and the rank's range of experts instead). Throws
// naming the number that does not divide, or the feature the split does not cover.
HParams shard_hparams(const PipelineGraph& graph, int ranks, int rank = 0, bool experts = false);

// The stations whose weights tensor parallelism splits: every block's norms, ops and post norms.
std::vector<const GraphNode*> block_nodes(const PipelineGraph& graph);

// The model as one rank's split stations read it: each weight such a station splits is a copy of
// the rank's share (read from the file, so a rank reads only its share of those weights); every
// other weight and all metadata are the file's own. The head's share: its rows of the output
// matrix (of the token embedding when the head is tied to it).
class ShardedModel final : public ModelView {
 public:
  // Throws naming the station and role a split does not cover (a fused qkv product, an output
  // bias, a recurrent mixer), or a share that would cut a quantised block. `experts`: the rank's
  // whole experts of each mixture instead of a share of every expert (a dense feed-forward is then
  // refused: it has no experts to share out).
  ShardedModel(const ModelView& model, const std::vector<const GraphNode*>& nodes, int rank, int ranks,
               bool experts = false);

  const MetaValue* meta(std::string_view key) const override { return model_.meta(key); }
  const Tensor* weight(std::string_view name) const override;
  std::string path() const override { return model_.path(); }
  std::vector<std::string_view> meta_keys() const override { return model_.meta_keys(); }
  std::vector<std::string_view> weight_names() const override { return model_.weight_names(); }

  size_t shard_bytes() const;  // bytes copied for this rank

 private:
  struct Shard {
    std::vector<unsigned char> bytes;
    Tensor view;
  };
  // The rank's share of t along dim (0: columns of every row; 1: rows of every matrix; 2: whole
  // matrices, the experts).
  static Shard share_of(const Tensor& t, int dim, int rank, int ranks);
  const ModelView& model_;
  std::map<std::string, Shard, std::less<>> shards_;
};

}  // namespace semline
