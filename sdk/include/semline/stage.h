// semline SDK — the stations of the line.
//
// A stage is bound once, at load, to one station of the model (one layer's weights and the
// hyper-parameters) and then called for every step. A step is a Batch: any mix of sequences, each
// contributing any number of tokens, so prefill, decode and continuous-batching steps share one
// call. Activations are F32 rows of n_embd values, one row per batch token, in backend memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "semline/backend.h"
#include "semline/error.h"
#include "semline/model.h"
#include "semline/params.h"
#include "semline/tensor.h"

namespace semline {

// Ssm (7.0): a block's sequence mixer with a recurrent state instead of a KV cache (Mamba).
enum class StageKind : uint32_t { Tokenizer, Embedding, Norm, Attention, Ffn, Head, Sampler, Ssm };
inline constexpr StageKind kAllStageKinds[] = {StageKind::Tokenizer, StageKind::Embedding, StageKind::Norm,
                                               StageKind::Attention, StageKind::Ssm,       StageKind::Ffn,
                                               StageKind::Head,      StageKind::Sampler};
inline const char* stage_kind_name(StageKind k) {
  switch (k) {
    case StageKind::Tokenizer: return "tokenizer";
    case StageKind::Embedding: return "embedding";
    case StageKind::Norm: return "norm";
    case StageKind::Attention: return "attention";
    case StageKind::Ffn: return "ffn";
    case StageKind::Head: return "head";
    case StageKind::Sampler: return "sampler";
    case StageKind::Ssm: return "ssm";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Steps

// One sequence's part of a step and where its keys and values live in the paged KV cache.
struct SeqView {
  int32_t n_past = 0;              // tokens of this sequence cached before this step
  const int32_t* blocks = nullptr; // block table: cache block holding positions [i*B, (i+1)*B),
                                   // -1 once released behind every layer's kv_window()
  int32_t n_blocks = 0;
  int32_t slot = -1;  // the sequence's row in every recurrent state pool (StateLayer; 7.0)
};

// The tokens of one step. All arrays are host memory, valid for the duration of the step.
struct Batch {
  uint64_t step = 0;                   // increases every step; lets a device backend upload once
  int32_t n_tokens = 0;
  const int32_t* tokens = nullptr;     // [n_tokens] token ids
  const int32_t* positions = nullptr;  // [n_tokens] position of each token in its sequence
  const int32_t* seq = nullptr;        // [n_tokens] index into seqs
  int32_t n_seqs = 0;
  const SeqView* seqs = nullptr;       // [n_seqs]
  int32_t n_outputs = 0;
  const int32_t* output_rows = nullptr;  // [n_outputs] rows whose logits are wanted, ascending
};

// One layer's KV cache: pools of blocks, each holding block_tokens positions.
//   k, v: ne = {head_dim, n_head_kv, block_tokens, n_blocks}, dtype F32, F16 or Q8_0 (ggml's
//   blocks of 32 values; head_dim a multiple of 32). Read the strides: heads (nb[1]), positions
//   (nb[2]) and blocks (nb[3]) may nest in any order, no two rows overlapping. The host keeps each
//   kv head's blocks together, one after another (nb[2] = one row, nb[3] = block_tokens rows,
//   nb[1] = n_blocks blocks), so a sequence holding consecutive blocks has a head's keys in one
//   stretch; Tensor::span_bytes is how far a pool reaches. A stage that reads another dtype than
//   it computes refuses it, naming the dtype.
struct KvLayer {
  Tensor k;
  Tensor v;
  int32_t block_tokens = 0;
};

// One layer's recurrent state (7.0): for each size a stage declares (Stage::state_sizes), a pool
// of F32 rows, ne = {size, n_slots}, on the stage's backend; row SeqView::slot is the sequence's.
// A sequence with n_past == 0 starts from zeros: the stage does not read its rows, it writes them.
// A step carries each sequence's tokens in position order and continues from n_past, the state's
// position (the host never rolls a recurrent state back).
struct StateLayer {
  std::vector<Tensor> pools;
};

// Analytic work of one call, for the meters (FLOPs and bytes read or written in memory).
struct StageCost {
  double flops = 0;
  double bytes = 0;
};

// Everything a transform stage's forward call sees besides its input and output.
// How a stage's result meets `out` (5.0). Natural: as its kind says below (norms write, attention
// and ffn add: the residual connection). Write: out = result. Add: out += result. The line asks
// for them around a post-norm (Gemma 2's sandwich): the op writes its result to a buffer of its
// own (Write), the post norm adds its normed rows into the residual stream (Add). A stage refuses
// a mode it has no use for.
enum class OutMode { Natural, Write, Add };

struct Step {
  const Batch& batch;
  Stream& stream;
  const KvLayer* kv = nullptr;  // the stage's layer's cache (attention only)
  OutMode out = OutMode::Natural;
  const StateLayer* state = nullptr;  // the stage's recurrent state (stages with state_sizes; 7.0)
};

// Embedding, norm, attention, ffn and head stages.
//   embedding: out[n_tokens, n_embd]  = embed(batch.tokens, batch.positions)   (in is unused)
//   norm:      out[n_tokens, n_embd]  = norm(in)
//   attention: out[n_tokens, n_embd] += attention(in)        (adds: the residual connection)
//   ffn:       out[n_tokens, n_embd] += ffn(in)              (adds: the residual connection)
//   ssm:       out[n_tokens, n_embd] += mixer(in)            (adds: the residual connection)
//   head:      out[n_outputs, n_vocab] = logits(in rows batch.output_rows)
// Tensors are F32, contiguous, on the stage's backend. forward enqueues on step.stream.
// The engine calls a stage from one thread at a time and never runs two steps of one line at
// once, so a stage may keep per-step scratch in members. in and out never alias: the line passes
// the normed rows x as in and the residual stream h as out (the embedding gets h as both and
// reads only the batch). A stage that threw may be called again with the next step.
class Stage {
 public:
  virtual ~Stage() = default;
  virtual void forward(const Tensor& in, const Tensor& out, const Step& step) = 0;
  virtual StageCost cost(const Batch& batch) const = 0;
  // Attention only: a query at position p reads no key before p - kv_window() + 1, so the engine
  // may release cache blocks behind that once every layer is windowed. 0: keys may be read back
  // to position 0 (dense attention, and every stage that is not attention).
  virtual int32_t kv_window() const { return 0; }
  // A mixer with recurrent state (7.0): the F32 values one sequence's state holds, per pool (a
  // Mamba layer: its convolution's last inputs, its SSM state). The host allocates the pools and
  // passes them as Step::state. Empty: the stage keeps nothing between steps.
  virtual std::vector<int64_t> state_sizes() const { return {}; }
};

// ---------------------------------------------------------------------------------------------
// Host stations: tokenizer and samplers

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // parse_special: control, unknown and user-defined tokens written in the text (e.g. "</s>",
  // "<|im_start|>") become their ids, as llama.cpp's parse_special; otherwise only user-defined
  // tokens do and control tokens are text like any other.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const = 0;
  // The bytes a token contributes to the text when it follows other tokens (byte-fallback tokens
  // give their byte, control tokens nothing). Streaming output joins these bytes.
  virtual std::string token_bytes(int32_t id) const = 0;
  // The text of a whole sequence, with the model's rules for the sequence start (e.g. the
  // SentencePiece dummy-prefix space is removed).
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  virtual std::string piece(int32_t id) const = 0;  // the vocabulary entry as stored
  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos() const = 0;  // -1 when the vocabulary has none
  virtual int32_t eos() const = 0;  // -1 when the vocabulary has none
  // Whether a token ends generation: EOS and the vocabulary's other end-of-turn tokens (e.g.
  // <|im_end|>, <|eot_id|>, <|end|>), as llama.cpp's end-of-generation set.
  virtual bool is_eog(int32_t id) const = 0;
};

struct Candidate {
  int32_t id;
  float logit;
  float p;  // probability, valid after a sampler that normalises (softmax)
};

// The working set of a sampler chain, passed from member to member in the chain's order.
//   Start: one item per vocabulary entry, in id order (items[i].id == i), logit from the model,
//   p = 0, sorted = false, selected = -1.
//   items: a member may reorder, rescale (logit), drop, or set p; it must never add an id twice
//   nor an id outside the vocabulary. It must not leave the set empty: a member that would (every
//   candidate banned, say) is reported by the host, naming its key and plugin, and the step fails.
//   sorted: true only when items are in descending logit order (NaN last, equal logits by lower
//   id); a member that changes logits or order without keeping that order sets it false.
//   p: valid only right after a member that normalises (top_p and draw take a softmax over the
//   current logits); a member that changes logits or drops items leaves it stale.
//   selected: the index in items of the chosen token, set by a selecting member (greedy, draw);
//   a member that changes items sets it back to -1. The chain must end with selected in range.
struct Candidates {
  std::vector<Candidate> items;
  bool sorted = false;      // items in descending logit order
  int32_t selected = -1;    // index into items once a selecting sampler ran
};

// One member of a sampler chain. A sampler belongs to one sequence (the engine makes one chain
// per sequence it generates), so it may keep state between steps: reset() starts it over. The
// chains of different sequences may run at the same time on different threads: what samplers
// share is read-only.
class Sampler {
 public:
  virtual ~Sampler() = default;
  // history: the sequence so far (prompt and generated tokens), oldest first.
  virtual void apply(Candidates& c, std::span<const int32_t> history) = 0;
  virtual void reset() {}  // start of a new sequence (re-seeds random draws)
};

// ---------------------------------------------------------------------------------------------
// Binding a stage to its station

enum class LogLevel { Trace, Debug, Info, Warn, Error };
using LogFn = std::function<void(LogLevel, std::string_view)>;

// What a factory gets. The host makes it and plugins read it through this reference: fields are
// appended only (each naming the minor that added it), see plugin.h.
struct StageContext {
  Backend* backend = nullptr;    // null for host stations (tokenizer, sampler)
  const ModelView* model = nullptr;
  const HParams* hp = nullptr;
  int32_t layer = -1;            // block index, -1 outside the blocks
  std::string station;           // the template's station name, e.g. "attn_norm"
  std::vector<std::pair<std::string, std::string>> tensors;  // role -> tensor name in the file
  Params params;                 // validated against the entry's schema, defaults filled in
  int32_t max_batch_tokens = 0;  // the most tokens a step will carry (size scratch with it)
  LogFn log;
  // Samplers: the line's tokenizer (token_bytes gives a candidate's text), alive as long as the
  // sampler. Null for every other station.
  const Tokenizer* tokenizer = nullptr;

  // The weight bound to a role, made usable by the backend. Throws naming the role and tensor.
  Tensor weight(std::string_view role) const {
    const Tensor* t = find_weight(role);
    if (!t) throw Error(missing(role));
    return backend ? backend->upload_weight(*t) : *t;
  }
  // Host view of the weight bound to a role, or null when the role is unbound or absent.
  const Tensor* find_weight(std::string_view role) const {
    for (const auto& [r, name] : tensors)
      if (r == role) return model->weight(name);
    return nullptr;
  }
  bool has_weight(std::string_view role) const { return find_weight(role) != nullptr; }

 private:
  std::string missing(std::string_view role) const {
    for (const auto& [r, name] : tensors)
      if (r == role) return "station '" + station + "': tensor '" + name + "' (" + std::string(role) +
                            ") is not in " + model->path();
    return "station '" + station + "': no tensor bound to role '" + std::string(role) + "'";
  }
};

}  // namespace semline
