// What the attention station hands a backend's kernels: which keys each query meets (the
// variant's mask, written once) and how the core that meets them is asked for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <semline/model.h>
#include <semline/stage.h>

namespace semline::stations {

// The head layout of an attention station, from its hyper-parameters (attention_shape checks it).
struct AttentionShape {
  int64_t n_embd = 0, n_head = 0, n_kv = 0, head_dim = 0, rope_dim = 0;
  RopeType rope_type = RopeType::None;
  // [rope_dim / 2]: pair i turns by pos * inv_freq[i] radians, inv_freq[i] =
  // freq_scale * base^(-2i / rope_dim) / rope_freqs[i] (rope_freqs: Llama 3's divisors, else 1).
  std::vector<double> inv_freq;
  int64_t q_width() const { return n_head * head_dim; }
  int64_t kv_width() const { return n_kv * head_dim; }
  int64_t qkv_width() const { return q_width() + 2 * kv_width(); }  // a projected row: q | k | v
};

struct KeyRange {
  int32_t lo, hi;  // keys [lo, hi); empty when hi <= lo
};

// The keys a query at position `pos` of its sequence attends to, among 0..pos.
class KeyMask {
 public:
  virtual ~KeyMask() = default;
  // The first key it reads: only the cache blocks from there to pos must exist (blocks before it
  // may have been released, see Stage::kv_window).
  virtual int32_t first_key(int32_t) const { return 0; }
  // Its keys in the tile [p0, p1): a sub-range inside [first_key(pos), pos].
  virtual KeyRange keys_in_tile(int32_t pos, int32_t p0, int32_t p1) const {
    return {p0, p1 < pos + 1 ? p1 : pos + 1};
  }
  // How many keys it meets, for cost().
  virtual double keys_read(int32_t pos) const { return pos - first_key(pos) + 1.0; }
  // Stage::kv_window of the variant: 0 when a query may read back to position 0.
  virtual int32_t kv_window() const { return 0; }
  // Every key 0..pos (the kernels of a backend without masks of their own serve only these).
  virtual bool causal() const { return true; }
  // W when the mask is exactly the last W positions (a sliding window, which such kernels serve by
  // starting at first_key), else 0.
  virtual int32_t window() const { return 0; }
};

// How queries meet keys: the whole score row at once (dense), or key tiles of `tile` positions
// with an online softmax (flash and the masked variants; with a block-sparse mask the tiles are
// its blocks).
enum class CoreKind { Dense, Tiled };

struct CoreSpec {
  const char* variant = "";  // the registry's variant name, for messages
  CoreKind kind = CoreKind::Dense;
  int64_t tile = 0;              // Tiled: keys per tile
  const KeyMask* mask = nullptr; // outlives the core
  int32_t max_tokens = 0;        // the most tokens a step carries
  size_t scratch_from = 0;       // the core may use the scratch area from this byte on
  float scale = 0;               // q . k is multiplied by it; 0: 1 / sqrt(head_dim)
  float softcap = 0;             // > 0: scores become softcap * tanh(score / softcap) (Gemma 2)
};

// A backend's core for one attention station.
//   prepare(max_keys): before anything of the step is placed in scratch (the area may grow, and
//     move, here): the longest key range of the step (pos + 1).
//   run: attn[t][h] = softmax(cap(q_t,h . K * scale)) V over the keys the mask lets the
//     token's query meet, read from step.kv; q: the step's rows of n_head * head_dim rotated
//     queries, attn: as many rows of n_head * head_dim values to fill.
class AttentionCore {
 public:
  virtual ~AttentionCore() = default;
  virtual void prepare(int64_t) {}
  virtual void run(const Step& step, const Tensor& q, const Tensor& attn) = 0;
};

}  // namespace semline::stations
