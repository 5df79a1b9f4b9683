#include "core/engine/parallel.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include <semline/error.h>

namespace semline {
namespace {

// How a block station's weight is shared among the ranks.
//   Rows: the rank keeps its share of the outputs (ne[1] of a matrix, each expert's; ne[0] of a bias)
//   Cols: the rank keeps its share of the inputs (ne[0], every row)
//   Whole: every rank reads the whole weight
//   Experts: the rank keeps its share of the experts (ne[2]), each whole (expert parallelism)
enum class Split { Rows, Cols, Whole, Experts };

// The roles the split covers, per station kind; any other bound role refuses the split.
bool split_of(StageKind kind, std::string_view role, Split& split) {
  struct Rule {
    StageKind kind;
    std::string_view role;
    Split split;
  };
  static constexpr Rule rules[] = {
      {StageKind::Attention, "q", Split::Rows},         {StageKind::Attention, "k", Split::Rows},
      {StageKind::Attention, "v", Split::Rows},         {StageKind::Attention, "q_bias", Split::Rows},
      {StageKind::Attention, "k_bias", Split::Rows},    {StageKind::Attention, "v_bias", Split::Rows},
      {StageKind::Attention, "o", Split::Cols},         {StageKind::Attention, "rope_freqs", Split::Whole},
      {StageKind::Attention, "q_norm", Split::Whole},   {StageKind::Attention, "k_norm", Split::Whole},
      {StageKind::Ffn, "gate", Split::Rows},            {StageKind::Ffn, "up", Split::Rows},
      {StageKind::Ffn, "gate_bias", Split::Rows},       {StageKind::Ffn, "up_bias", Split::Rows},
      {StageKind::Ffn, "down", Split::Cols},            {StageKind::Ffn, "router", Split::Whole},
      {StageKind::Ffn, "gate_exps", Split::Rows},       {StageKind::Ffn, "up_exps", Split::Rows},
      {StageKind::Ffn, "down_exps", Split::Cols},
      {StageKind::Head, "output", Split::Rows},         {StageKind::Head, "tokens", Split::Rows},
  };
  if (kind == StageKind::Norm) {
    split = Split::Whole;
    return true;
  }
  for (const Rule& r : rules)
    if (r.kind == kind && r.role == role) {
      split = r.split;
      return true;
    }
  return false;
}

std::string where(const GraphNode& n) {
  return n.layer >= 0 ? "block " + std::to_string(n.layer) + " " + n.station : n.station;
}

std::string divides(const char* what, int64_t value, int ranks) {
  return std::string(what) + " = " + std::to_string(value) + " does not divide among " + std::to_string(ranks) +
         " ranks ([parallel] tensor); choose a number of ranks that divides it";
}

}  // namespace

std::pair<int32_t, int32_t> LineSplit::layers(int64_t n_layer) const {
  const int64_t s = stage(), base = n_layer / pipeline, extra = n_layer % pipeline;
  const int64_t begin = s * base + std::min<int64_t>(s, extra);
  return {static_cast<int32_t>(begin), static_cast<int32_t>(begin + base + (s < extra ? 1 : 0))};
}

HParams shard_hparams(const PipelineGraph& graph, int ranks, int rank, bool experts) {
  HParams hp = graph.hp;
  if (ranks == 1) return hp;
  if (hp.n_head % ranks) throw Error(graph.model_path + ": " + divides("n_head", hp.n_head, ranks));
  if (hp.n_head_kv % ranks) throw Error(graph.model_path + ": " + divides("n_head_kv", hp.n_head_kv, ranks));
  hp.n_head /= ranks;
  hp.n_head_kv /= ranks;
  if (experts) {
    if (hp.n_expert < 1)
      throw Error(graph.model_path + ": [parallel] expert_parallel = true, but the model has no mixture of experts");
    if (hp.n_expert % ranks) throw Error(graph.model_path + ": " + divides("n_expert", hp.n_expert, ranks));
    hp.extra["expert_count"] = static_cast<double>(hp.n_expert / ranks);
    hp.extra["expert_first"] = static_cast<double>(rank * (hp.n_expert / ranks));
    return hp;
  }
  if (hp.n_ff % ranks) throw Error(graph.model_path + ": " + divides("n_ff", hp.n_ff, ranks));
  hp.n_ff /= ranks;
  return hp;
}

std::vector<const GraphNode*> block_nodes(const PipelineGraph& graph) {
  std::vector<const GraphNode*> out;
  for (const auto& block : graph.blocks)
    for (const GraphSublayer& sub : block) {
      out.push_back(&sub.norm);
      out.push_back(&sub.op);
      if (sub.post_norm) out.push_back(&*sub.post_norm);
    }
  return out;
}

ShardedModel::ShardedModel(const ModelView& model, const std::vector<const GraphNode*>& nodes, int rank, int ranks,
                           bool experts)
    : model_(model) {
  auto bound = [&](const GraphNode& n, std::string_view role) {
    for (const auto& [r, name] : n.tensors)
      if (r == role && model.weight(name)) return true;
    return false;
  };
  for (const GraphNode* n : nodes) {
    if (n->kind == StageKind::Ssm)
      throw Error(where(*n) + ": tensor parallelism does not split a recurrent mixer's state; run the model "
                              "with [parallel] tensor = 1");
    for (const auto& [role, name] : n->tensors) {
      const Tensor* t = model.weight(name);
      if (!t) continue;                                                                     // an optional role the file lacks
      if (n->kind == StageKind::Head && role == "tokens" && bound(*n, "output")) continue;  // a head not tied
      Split split{};
      if (!split_of(n->kind, role, split))
        throw Error(where(*n) + ": tensor parallelism cannot split tensor '" + name + "' (" + role +
                    "): only separate q, k, v and o products (with q, k, v biases) and gate, up and down "
                    "products (with gate and up biases) divide among ranks");
      if (experts && n->kind == StageKind::Ffn && !bound(*n, "router"))
        throw Error(where(*n) + ": expert parallelism shares out a mixture's experts, and this feed-forward has "
                                "none; leave [parallel] expert_parallel off to split its width");
      if (experts && (role == "gate_exps" || role == "up_exps" || role == "down_exps")) split = Split::Experts;
      if (split == Split::Whole) continue;
      if (split == Split::Experts) {
        if (t->ne[2] % ranks)
          throw Error(where(*n) + ": tensor '" + name + "' " + tensor_shape_string(*t) + " has " +
                      std::to_string(t->ne[2]) + " experts, which " + std::to_string(ranks) + " ranks cannot share evenly");
        if (!t->host || !t->contiguous())
          throw Error(where(*n) + ": tensor '" + name + "' is not a contiguous host view");
        shards_.insert_or_assign(name, share_of(*t, 2, rank, ranks));
        continue;
      }
      const int dim = split == Split::Cols || t->ndim == 1 ? 0 : 1;
      const int64_t whole = t->ne[dim], block = dtype_block_size(t->dtype);
      if (whole % ranks || (dim == 0 && (whole / ranks) % block))
        throw Error(where(*n) + ": tensor '" + name + "' " + tensor_shape_string(*t) + " has " + std::to_string(whole) +
                    (dim == 0 ? " columns" : " rows") + ", which " + std::to_string(ranks) +
                    " ranks cannot split evenly" +
                    (block > 1 ? " into whole " + std::string(dtype_name(t->dtype)) + " blocks of " + std::to_string(block)
                               : std::string()));
      if (!t->host || !t->contiguous())
        throw Error(where(*n) + ": tensor '" + name + "' is not a contiguous host view");
      shards_.insert_or_assign(name, share_of(*t, dim, rank, ranks));
    }
  }
}

ShardedModel::Shard ShardedModel::share_of(const Tensor& t, int dim, int rank, int ranks) {
  const int64_t part = t.ne[dim] / ranks;
  Shard s;
  s.view = t;
  s.view.ne[dim] = part;
  s.view.nb[1] = s.view.row_bytes();
  for (int d = 2; d < kMaxDims; ++d) s.view.nb[d] = s.view.nb[d - 1] * s.view.ne[d - 1];
  s.bytes.resize(static_cast<size_t>(s.view.nb[kMaxDims - 1] * s.view.ne[kMaxDims - 1]));
  const auto* src = static_cast<const unsigned char*>(t.host);
  unsigned char* dst = s.bytes.data();
  if (dim == 2) {  // the rank's experts, one run of whole matrices
    std::memcpy(dst, src + part * rank * t.nb[2], s.bytes.size());
  } else if (dim == 0) {  // the rank's columns of every row
    const size_t skip = static_cast<size_t>(dtype_row_bytes(t.dtype, part * rank));
    const size_t take = static_cast<size_t>(s.view.nb[1]);
    for (int64_t r = 0; r < t.rows(); ++r) std::memcpy(dst + r * take, src + r * t.nb[1] + skip, take);
  } else {  // the rank's rows of every matrix (expert)
    const size_t take = static_cast<size_t>(part * t.nb[1]);
    for (int64_t e = 0; e < t.ne[2] * t.ne[3]; ++e)
      std::memcpy(dst + e * take, src + e * t.nb[2] + part * rank * t.nb[1], take);
  }
  s.view.host = dst;  // the vector's storage stays put when the Shard moves
  s.view.buffer = nullptr;
  s.view.offset = 0;
  return s;
}

const Tensor* ShardedModel::weight(std::string_view name) const {
  auto it = shards_.find(name);
  return it != shards_.end() ? &it->second.view : model_.weight(name);
}

size_t ShardedModel::shard_bytes() const {
  size_t total = 0;
  for (const auto& [name, s] : shards_) total += s.bytes.size();
  return total;
}

}  // namespace semline
