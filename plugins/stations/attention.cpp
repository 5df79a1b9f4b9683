// Causal self-attention over the paged KV cache, one station for every variant (dense, flash,
// sliding_window, block_sparse), which differ in which keys a query meets (the mask, below) and
// in the core a backend runs for them.
//
// A step: project q, k, v for every batch token into one q | k | v row each (three products side
// by side over the input, or one fused qkv product as GPT-2's c_attn; each with an optional bias);
// RMS-normalise each head of q and k where the station binds q_norm and k_norm (Qwen3); rotate q
// and k by the token's position and store k and v in the cache slot of that position;
// let each token attend to the keys its mask allows among positions 0..pos of its own sequence,
// read back from the cache (so prefill chunks, decode and mixed batches share one path); then
// out += W_o attn (+ b_o): the residual add (ahead of a post norm, out = W_o attn). The scores are
// q . k / sqrt(head_dim) unless the model scales them otherwise (HParams::extra attention_scale)
// and soft-capped where it says (attn_logit_softcap, Gemma 2).
#include <algorithm>
#include <cmath>
#include <iterator>
#include <utility>

#include <semline/error.h>

#include "stations/binding.h"
#include "stations/factories.h"
#include "stations/stations.h"

namespace semline::stations {
namespace {

// --- masks

class CausalMask final : public KeyMask {};

// A query at p attends to (p - W, p], the W most recent positions with its own included:
// llama.cpp's rule for Mistral's llama.attention.sliding_window (key k masked when p - k >= W).
class WindowMask final : public KeyMask {
 public:
  explicit WindowMask(int32_t window) : window_(window) {}
  int32_t first_key(int32_t pos) const override { return pos >= window_ ? pos - window_ + 1 : 0; }
  KeyRange keys_in_tile(int32_t pos, int32_t p0, int32_t p1) const override {
    return {std::max(p0, first_key(pos)), std::min(p1, pos + 1)};
  }
  int32_t kv_window() const override { return window_; }
  bool causal() const override { return false; }
  int32_t window() const override { return window_; }

 private:
  int32_t window_;
};

// BigBird-like: keys in blocks of `block` positions; a query at p, in block b = p / block, attends
// causally (keys <= p) to every block j <= b with
//   b - local < j            the local band, its own block included,
//   j < global               the first blocks (global tokens, an attention sink),
//   j % stride == stride - 1 every stride-th block (stride 0: none).
// The core's tiles are the blocks (CoreSpec::tile = block), so p0 / block names a tile's block.
class BlockSparseMask final : public KeyMask {
 public:
  BlockSparseMask(int64_t block, int64_t local, int64_t global, int64_t stride)
      : block_(block), local_(local), global_(global), stride_(stride) {}
  int32_t first_key(int32_t pos) const override {
    if (global_ > 0 || stride_ > 0) return 0;
    return static_cast<int32_t>(std::max<int64_t>(0, pos / block_ - local_ + 1) * block_);
  }
  KeyRange keys_in_tile(int32_t pos, int32_t p0, int32_t p1) const override {
    if (!allowed(pos / block_, p0 / block_)) return {0, 0};
    return {p0, std::min(p1, pos + 1)};
  }
  double keys_read(int32_t pos) const override {
    const int64_t b = pos / block_;
    double keys = static_cast<double>(pos - b * block_ + 1);  // its own block, up to pos
    for (int64_t j = 0; j < b; ++j)
      if (allowed(b, j)) keys += static_cast<double>(block_);
    return keys;
  }
  // Only the local band reads back a bounded distance: local * block - 1 positions at most.
  int32_t kv_window() const override {
    return global_ == 0 && stride_ == 0 ? static_cast<int32_t>(std::min<int64_t>(local_ * block_, INT32_MAX)) : 0;
  }
  bool causal() const override { return false; }

 private:
  bool allowed(int64_t b, int64_t j) const {
    return j <= b && (j > b - local_ || j < global_ || (stride_ > 0 && j % stride_ == stride_ - 1));
  }
  int64_t block_, local_, global_, stride_;
};

// --- the station

class Attention final : public Station {
 public:
  Attention(const StageContext& ctx, Kernels& k, std::unique_ptr<KeyMask> mask, CoreKind kind, int64_t tile,
            const char* variant)
      : Station(ctx, k), a_(attention_shape(ctx)),
        mask_(std::move(mask)) {
    takes_out_modes_ = true;
    const int64_t qd = a_.q_width(), kd = a_.kv_width();
    fused_ = is_bound(ctx, "qkv");
    if (fused_) {
      wqkv_ = bind_linear(ctx, k_, "qkv", a_.n_embd, a_.qkv_width(), "(n_embd, (n_head + 2 n_head_kv) * head_dim)",
                          "qkv_bias", max_tokens_);
    } else {
      wq_ = bind_linear(ctx, k_, "q", a_.n_embd, qd, "(n_embd, n_head * head_dim)", "q_bias", max_tokens_);
      wk_ = bind_linear(ctx, k_, "k", a_.n_embd, kd, "(n_embd, n_head_kv * head_dim)", "k_bias", max_tokens_);
      wv_ = bind_linear(ctx, k_, "v", a_.n_embd, kd, "(n_embd, n_head_kv * head_dim)", "v_bias", max_tokens_);
    }
    wo_ = bind_linear(ctx, k_, "o", qd, a_.n_embd, "(n_head * head_dim, n_embd)", "o_bias", max_tokens_);
    qkv_ = plan_.add_rows(a_.qkv_width(), max_tokens_);
    attn_ = plan_.add_rows(qd, max_tokens_);
    k_.reserve_scratch(plan_.total());
    k_.reserve_tokens(max_tokens_);
    HeadNorms norms;
    if (is_bound(ctx, "q_norm") || is_bound(ctx, "k_norm")) {
      norms.q = weight_vector(ctx, "q_norm", a_.head_dim, "(head_dim)");
      norms.k = weight_vector(ctx, "k_norm", a_.head_dim, "(head_dim)");
      norms.eps = static_cast<float>(hp_.norm_eps);
    }
    rope_ = k_.bind_rope_store(a_, norms);
    CoreSpec spec;
    spec.variant = variant;
    spec.kind = kind;
    spec.tile = tile;
    spec.mask = mask_.get();
    spec.max_tokens = max_tokens_;
    spec.scratch_from = plan_.total();
    spec.scale = static_cast<float>(hp_.extra_or("attention_scale", 0.0));
    spec.softcap = static_cast<float>(hp_.extra_or("attn_logit_softcap", 0.0));
    core_ = k_.bind_attention(ctx, a_, spec);
  }

  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    const Batch& b = step.batch;
    const int64_t m = b.n_tokens;
    const auto [x, y] = begin_rows(step, in, out, a_.n_embd);
    if (m == 0) return;
    if (!step.kv) throw Error(label_ + ": the step carries no KV cache for this layer");
    check_kv(*step.kv);
    kv_value_bytes_ = static_cast<double>(dtype_row_bytes(step.kv->k.dtype, a_.head_dim)) / static_cast<double>(a_.head_dim);
    core_->prepare(check_positions(b, *step.kv));  // scratch may move here: resolved below

    const int64_t qd = a_.q_width(), kd = a_.kv_width();
    const Tensor qkv = k_.scratch_rows(qkv_, a_.qkv_width(), m);
    const Tensor attn = k_.scratch_rows(attn_, qd, m);
    if (fused_) {
      const Product p{wqkv_.get(), qkv, false};
      k_.linear(step, x, {&p, 1}, m);
    } else {  // each product writes its columns of the q | k | v rows the fused one writes whole
      const Product p[3] = {{wq_.get(), columns(qkv, 0, qd), false},
                            {wk_.get(), columns(qkv, qd, kd), false},
                            {wv_.get(), columns(qkv, qd + kd, kd), false}};
      k_.linear(step, x, p, m);
    }
    k_.rope_store(step, *rope_, qkv, m);
    core_->run(step, columns(qkv, 0, qd), attn);
    const Product residual{wo_.get(), y, adds(step, true)};  // out += W_o attn
    k_.linear(step, attn, {&residual, 1}, m);
  }

  StageCost cost(const Batch& b) const override {
    const double m = b.n_tokens, qd = static_cast<double>(a_.q_width()), kd = static_cast<double>(a_.kv_width());
    double keys = 0;  // key positions attended to, summed over tokens
    for (int32_t t = 0; t < b.n_tokens; ++t) keys += mask_->keys_read(b.positions[t]);
    double weights = wo_->bytes();
    for (const auto* w : {&wqkv_, &wq_, &wk_, &wv_})
      if (*w) weights += (*w)->bytes();
    const double flops = 2.0 * m * a_.n_embd * (2.0 * qd + 2.0 * kd) + 4.0 * keys * qd;
    const double bytes = weights + 2.0 * keys * kd * kv_value_bytes_ + m * (8.0 * a_.n_embd + 2.0 * kd * kv_value_bytes_);
    return {flops, bytes};
  }

  int32_t kv_window() const override { return mask_->kv_window(); }

 private:
  // Columns [first, first + width) of rows made by scratch_rows.
  static Tensor columns(const Tensor& rows, int64_t first, int64_t width) {
    Tensor c = rows;
    c.ne[0] = width;
    c.offset += static_cast<size_t>(first) * 4;
    if (c.host) c.host = static_cast<char*>(c.host) + first * 4;
    return c;
  }

  void check_kv(const KvLayer& kv) const {
    const Tensor* ts[2] = {&kv.k, &kv.v};
    for (int i = 0; i < 2; ++i) {
      const Tensor& t = *ts[i];
      const char* name = i ? "v" : "k";
      const bool shape_ok = t.ne[0] == a_.head_dim && t.ne[1] == a_.n_kv && t.ne[2] == kv.block_tokens &&
                            t.ne[3] >= 1 && kv.block_tokens > 0;
      const bool dtype_ok = t.dtype == DType::F32 || t.dtype == DType::F16 ||
                            (t.dtype == DType::Q8_0 && a_.head_dim % dtype_block_size(DType::Q8_0) == 0);
      if (!dtype_ok || !shape_ok)
        throw Error(label_ + ": KV cache " + name + " must be F32, F16 or Q8_0 (heads of whole 32-value blocks) [" +
                    std::to_string(a_.head_dim) + ", " +
                    std::to_string(a_.n_kv) + ", " + std::to_string(kv.block_tokens) +
                    " (block_tokens), n_blocks], got " + tensor_shape_string(t));
      // Heads, slots and blocks may nest in any order (the host keeps each head's blocks together),
      // as long as no two rows meet: each dimension's stride clears everything the ones inside it span.
      std::pair<int64_t, int64_t> dims[3] = {{t.nb[1], t.ne[1]}, {t.nb[2], t.ne[2]}, {t.nb[3], t.ne[3]}};
      std::sort(std::begin(dims), std::end(dims));
      int64_t inner = dtype_row_bytes(t.dtype, a_.head_dim);
      bool apart = t.nb[0] == dtype_block_bytes(t.dtype);
      for (const auto& [stride, n] : dims) {
        if (n == 1) continue;
        apart = apart && stride >= inner;
        inner = stride * n;
      }
      if (!apart)
        throw Error(label_ + ": KV cache " + name + " " + tensor_shape_string(t) + " has overlapping strides");
    }
    if (kv.k.ne[3] != kv.v.ne[3])
      throw Error(label_ + ": KV cache k has " + std::to_string(kv.k.ne[3]) + " blocks but v has " +
                  std::to_string(kv.v.ne[3]));
    k_.check_kv(kv, label_);
  }

  // Every token's sequence, position and the block table entries its keys need; returns the
  // longest key range (pos + 1).
  int64_t check_positions(const Batch& b, const KvLayer& kv) const {
    const int32_t bt = kv.block_tokens;
    const int64_t n_blocks = kv.k.ne[3];
    int64_t longest = 0;
    // Block table entries [lo, hi] of run_seq are known good; consecutive tokens of a sequence
    // mostly read overlapping ranges, so each entry is checked about once.
    int32_t run_seq = -1, lo = 0, hi = -1;
    for (int32_t t = 0; t < b.n_tokens; ++t) {
      const int32_t s = b.seq[t], pos = b.positions[t];
      auto tok = [&] { return label_ + ": batch token " + std::to_string(t); };  // only for messages
      if (s < 0 || s >= b.n_seqs)
        throw Error(tok() + " names sequence " + std::to_string(s) + " but the batch has " + std::to_string(b.n_seqs));
      if (pos < 0) throw Error(tok() + " has a negative position " + std::to_string(pos));
      const SeqView& sv = b.seqs[s];
      const int32_t need = pos / bt;
      if (need >= sv.n_blocks || !sv.blocks)
        throw Error(tok() + " at position " + std::to_string(pos) + " needs entry " + std::to_string(need) +
                    " of the block table of sequence " + std::to_string(s) + ", which has " +
                    std::to_string(sv.n_blocks) + " entries");
      const int32_t first_key = mask_->first_key(pos), first = first_key / bt;
      if (s != run_seq) run_seq = s, lo = 0, hi = -1;
      for (int32_t i = first; i <= need; ++i) {
        if (i >= lo && i <= hi) continue;
        if (sv.blocks[i] == -1)
          throw Error(tok() + " at position " + std::to_string(pos) + " reads keys from position " +
                      std::to_string(first_key) + ", but block table entry " + std::to_string(i) + " of sequence " +
                      std::to_string(s) + " was released (behind every layer's window)");
        if (sv.blocks[i] < 0 || sv.blocks[i] >= n_blocks)
          throw Error(label_ + ": block table entry " + std::to_string(i) + " of sequence " + std::to_string(s) +
                      " is cache block " + std::to_string(sv.blocks[i]) + ", but the cache has " +
                      std::to_string(n_blocks) + " blocks");
      }
      if (hi < lo || first > hi + 1 || need + 1 < lo) lo = first, hi = need;  // disjoint: start over
      else lo = std::min(lo, first), hi = std::max(hi, need);
      if (pos + 1 > longest) longest = pos + 1;
    }
    return longest;
  }

  AttentionShape a_;
  std::unique_ptr<KeyMask> mask_;
  bool fused_ = false;  // one qkv product instead of q, k, v
  std::unique_ptr<LinearWeight> wqkv_, wq_, wk_, wv_, wo_;
  size_t qkv_ = 0, attn_ = 0;  // [max_tokens][qkv_width] q | k | v rows, [max_tokens][n_head * head_dim]
  std::unique_ptr<RopeStore> rope_;
  std::unique_ptr<AttentionCore> core_;
  double kv_value_bytes_ = 4;  // bytes per cache value (Q8_0: 34 / 32), seen in the last step
};

std::vector<std::string> refuse_model_window(const StageContext& ctx, std::string_view backend) {
  std::vector<std::string> why = attention_supported(ctx, backend);
  if (ctx.hp && ctx.hp->sliding_window > 0)
    why.push_back("the model attends over a sliding window of " + std::to_string(ctx.hp->sliding_window) +
                  " positions; this variant attends to the whole context");
  return why;
}

}  // namespace

StageEntry attention_entry(const std::string& variant, const std::string& backend, KernelsOf kernels_of) {
  using Make = std::function<std::unique_ptr<Stage>(const StageContext&)>;
  auto station = [kernels_of](const StageContext& ctx, std::unique_ptr<KeyMask> mask, CoreKind kind, int64_t tile,
                              const char* name) -> std::unique_ptr<Stage> {
    return std::make_unique<Attention>(ctx, kernels_of(ctx), std::move(mask), kind, tile, name);
  };
  const ParamSpec tile = int_spec("block", kDefaultBlock, 1, 4096, "keys per tile");
  if (variant == "dense") {
    Make make = [station](const StageContext& ctx) {
      return station(ctx, std::make_unique<CausalMask>(), CoreKind::Dense, 0, "dense");
    };
    StageEntry e = stage_entry(StageKind::Attention, "dense", backend,
                               "the reference: causal GQA attention (RoPE or none, q/k/v or fused qkv, optional "
                               "biases), full score row per query",
                               10, make);
    e.supports = [backend](const StageContext& ctx) { return refuse_model_window(ctx, backend); };
    return e;
  }
  if (variant == "flash") {
    Make make = [station](const StageContext& ctx) {
      return station(ctx, std::make_unique<CausalMask>(), CoreKind::Tiled, int_param(ctx, "block", kDefaultBlock),
                     "flash");
    };
    StageEntry e = stage_entry(StageKind::Attention, "flash", backend,
                               "causal GQA attention (RoPE or none, q/k/v or fused qkv, optional biases), key tiles "
                               "with an online softmax",
                               20, make);
    e.params = {tile};
    e.supports = [backend](const StageContext& ctx) { return refuse_model_window(ctx, backend); };
    return e;
  }
  if (variant == "sliding_window") {
    // With the model's window the variant is exact; a window on a model trained without one
    // approximates dense attention (equal to it while the context fits in the window).
    Make make = [station](const StageContext& ctx) {
      const HParams& hp = hparams_of(ctx);
      const int64_t given = int_param(ctx, "window", 0);
      const int64_t window = given > 0 ? given : hp.sliding_window;
      if (window < 1 || window > INT32_MAX)
        throw Error(station_label(ctx) + ": window " + std::to_string(window) + " must be 1.." +
                    std::to_string(INT32_MAX) +
                    " (set stages.attention.window, or use a model with llama.attention.sliding_window)");
      if (ctx.log && window != hp.sliding_window)
        ctx.log(LogLevel::Info, "window " + std::to_string(window) + " where the model has " +
                                    (hp.sliding_window ? std::to_string(hp.sliding_window) : std::string("none")) +
                                    ": an approximation of the model's attention");
      // A model whose window is on some layers only (Gemma 2: swa_period 2, the even ones) attends
      // causally on the others, as llama.cpp's rule says: layer L is windowed when L % period <
      // period - 1 (no period: every layer).
      const int64_t period = static_cast<int64_t>(hp.extra_or("swa_period", 0));
      if (given == 0 && period > 0 && ctx.layer >= 0 && ctx.layer % period >= period - 1)
        return station(ctx, std::make_unique<CausalMask>(), CoreKind::Tiled, int_param(ctx, "block", kDefaultBlock),
                       "sliding_window");
      return station(ctx, std::make_unique<WindowMask>(static_cast<int32_t>(window)), CoreKind::Tiled,
                     int_param(ctx, "block", kDefaultBlock), "sliding_window");
    };
    // Ranked between dense and flash: it never wins where flash can serve, and wins by rank on
    // the models flash refuses, those trained with a sliding window.
    StageEntry e = stage_entry(StageKind::Attention, "sliding_window", backend,
                               "each query attends to the last `window` positions, its own included (Mistral); "
                               "exact with the model's window, else an approximation of dense",
                               15, make);
    e.params = {int_spec("window", 0, 0, 2147483647.0, "positions a query attends to, its own included; 0: the model's"),
                tile};
    e.supports = [backend](const StageContext& ctx) {
      std::vector<std::string> why = attention_supported(ctx, backend);
      if (ctx.hp && ctx.hp->sliding_window == 0 && int_param(ctx, "window", 0) == 0)
        why.push_back("the model has no sliding window (llama.attention.sliding_window) and the config sets no window");
      return why;
    };
    return e;
  }
  if (variant == "block_sparse") {
    Make make = [station](const StageContext& ctx) {
      const int64_t block = int_param(ctx, "block", kDefaultBlock), local = int_param(ctx, "local", kDefaultLocal),
                    global = int_param(ctx, "global", kDefaultGlobal), stride = int_param(ctx, "stride", kDefaultStride);
      if (block < 1 || local < 1 || global < 0 || stride < 0)
        throw Error(station_label(ctx) + ": block " + std::to_string(block) + " and local " + std::to_string(local) +
                    " must be >= 1, global " + std::to_string(global) + " and stride " + std::to_string(stride) +
                    " >= 0");
      return station(ctx, std::make_unique<BlockSparseMask>(block, local, global, stride), CoreKind::Tiled, block,
                     "block_sparse");
    };
    // An approximation: ranked below every exact variant, so it runs only where a config names it.
    StageEntry e = stage_entry(StageKind::Attention, "block_sparse", backend,
                               "BigBird-like block pattern: local band, first blocks and every stride-th block, "
                               "an approximation of dense",
                               5, make);
    e.params = {int_spec("block", kDefaultBlock, 1, 4096, "positions per key block (and keys per tile)"),
                int_spec("local", kDefaultLocal, 1, 1 << 20, "blocks up to and including the query's own"),
                int_spec("global", kDefaultGlobal, 0, 1 << 20, "first blocks every query attends to"),
                int_spec("stride", kDefaultStride, 0, 1 << 20,
                         "every block j with j % stride == stride - 1 is attended to; 0: none")};
    e.caps.exact = false;
    e.supports = [backend](const StageContext& ctx) { return refuse_model_window(ctx, backend); };
    return e;
  }
  throw Error("attention_entry: no attention variant '" + variant + "'");
}

}  // namespace semline::stations
