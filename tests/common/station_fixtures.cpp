#include "common/station_fixtures.h"

#include <catch2/catch.hpp>

namespace semline::testing {

HParams layer_hparams(RopeType rope_type, Heads h, int64_t n_ctx_train) {
  HParams hp;
  hp.arch = "llama";
  hp.n_vocab = 67;
  hp.n_ctx_train = n_ctx_train;
  hp.n_embd = 64;
  hp.n_ff = 96;
  hp.n_layer = 1;
  hp.n_head = h.n_head;
  hp.n_head_kv = h.n_kv;
  hp.head_dim = h.head_dim;
  hp.rope_dim = h.rope_dim;
  hp.rope_base = 10000.0;
  hp.rope_type = rope_type;
  hp.norm_eps = 1e-5;
  return hp;
}

StageContext layer_context(Backend& be, const FakeModel& model, const HParams& hp, std::string station,
                           std::vector<std::pair<std::string, std::string>> tensors, int32_t max_tokens) {
  StageContext c;
  c.backend = &be;
  c.model = &model;
  c.hp = &hp;
  c.layer = 0;
  c.station = std::move(station);
  c.tensors = std::move(tensors);
  c.max_batch_tokens = max_tokens;
  return c;
}

std::unique_ptr<Stage> build_stage(const RecordingRegistry& entries, StageKind kind, const std::string& variant,
                                   StageContext ctx, std::map<std::string, ParamValue> params) {
  const StageEntry& e = entries.stage(kind, variant);
  for (const ParamSpec& p : e.params) ctx.params.values[p.name] = p.default_value;
  for (auto& [k, v] : params) ctx.params.values[k] = v;
  REQUIRE(e.supports(ctx).empty());
  return e.make_stage(ctx);
}

Cache::Cache(Backend& be, const HParams& hp, DType dt, int32_t block_tokens, int64_t n_blocks,
             CacheLayout layout) {
  const size_t bytes = static_cast<size_t>(hp.head_dim * hp.n_head_kv * block_tokens * n_blocks) *
                       static_cast<size_t>(dtype_block_bytes(dt));
  kbuf = be.alloc(bytes);
  vbuf = be.alloc(bytes);
  // host(): the address on a host backend, null for device memory.
  layer.k = make_tensor(dt, {hp.head_dim, hp.n_head_kv, block_tokens, n_blocks}, kbuf->host(), kbuf.get());
  layer.v = make_tensor(dt, {hp.head_dim, hp.n_head_kv, block_tokens, n_blocks}, vbuf->host(), vbuf.get());
  layer.block_tokens = block_tokens;
  for (Tensor* t : {&layer.k, &layer.v}) {
    if (layout == CacheLayout::HeadMajor) {
      t->nb[2] = t->row_bytes();
      t->nb[1] = t->nb[2] * block_tokens;
    } else if (layout == CacheLayout::HeadsApart) {
      t->nb[2] = t->row_bytes();
      t->nb[3] = t->nb[2] * block_tokens;
      t->nb[1] = t->nb[3] * n_blocks;
    }
  }
}

void add_attention_weights(FakeModel& model, const HParams& hp, DType dt) {
  const int64_t qd = hp.n_head * hp.head_dim, kd = hp.n_head_kv * hp.head_dim;
  model.add("q", dt, hp.n_embd, qd, 0.3f);
  model.add("k", dt, hp.n_embd, kd, 0.3f);
  model.add("v", dt, hp.n_embd, kd, 0.3f);
  model.add("o", dt, qd, hp.n_embd, 0.3f);
}

}  // namespace semline::testing
