#include "vulkan/stage_fixtures.h"

#include <memory>

namespace semline::vktest {

vk::VulkanBackend& shared_backend(bool subgroups) {
  // Destroyed at exit, before the leak check: the driver's objects are reachable only through
  // memory LeakSanitizer does not scan, so a backend left alive reads as leaks.
  static std::unique_ptr<vk::VulkanBackend> backends[2];
  std::unique_ptr<vk::VulkanBackend>& b = backends[subgroups ? 1 : 0];
  if (!b) b = make_backend(subgroups);
  return *b;
}

Layer::Layer(bool subgroups, RopeType rope_type, Heads h) : be(&shared_backend(subgroups)) {
  hp.arch = "llama";
  hp.n_vocab = 67;
  hp.n_ctx_train = 16;
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
}

StageContext Layer::context(std::string station, std::vector<std::pair<std::string, std::string>> tensors,
                            int32_t max_tokens) {
  StageContext c;
  c.backend = be;
  c.model = &model;
  c.hp = &hp;
  c.layer = 0;
  c.station = std::move(station);
  c.tensors = std::move(tensors);
  c.max_batch_tokens = max_tokens;
  return c;
}

std::unique_ptr<Stage> build(StageKind kind, const std::string& variant, StageContext ctx,
                             std::map<std::string, ParamValue> params) {
  const StageEntry& e = vulkan_entries().stage(kind, variant);
  for (const ParamSpec& p : e.params) ctx.params.values[p.name] = p.default_value;
  for (auto& [k, v] : params) ctx.params.values[k] = v;
  REQUIRE(e.supports(ctx).empty());
  return e.make_stage(ctx);
}

Cache::Cache(Backend& be, const HParams& hp, DType dt, int32_t block_tokens, int64_t n_blocks) {
  const size_t bytes = static_cast<size_t>(hp.head_dim * hp.n_head_kv * block_tokens * n_blocks) *
                       static_cast<size_t>(dtype_block_bytes(dt));
  kbuf = be.alloc(bytes);
  vbuf = be.alloc(bytes);
  layer.k = make_tensor(dt, {hp.head_dim, hp.n_head_kv, block_tokens, n_blocks}, nullptr, kbuf.get());
  layer.v = make_tensor(dt, {hp.head_dim, hp.n_head_kv, block_tokens, n_blocks}, nullptr, vbuf.get());
  layer.block_tokens = block_tokens;
}

Vec added(Backend& be, const Rows& out) {
  const std::vector<float> got = read_back(be, out.dev.t);
  Vec d(got.size());
  for (size_t i = 0; i < got.size(); ++i) d[i] = static_cast<double>(got[i]) - out.host[i];
  return d;
}

void add_attention_weights(Layer& l, DType dt) {
  const int64_t qd = l.hp.n_head * l.hp.head_dim, kd = l.hp.n_head_kv * l.hp.head_dim;
  l.model.add("q", dt, l.hp.n_embd, qd, 0.3f);
  l.model.add("k", dt, l.hp.n_embd, kd, 0.3f);
  l.model.add("v", dt, l.hp.n_embd, kd, 0.3f);
  l.model.add("o", dt, qd, l.hp.n_embd, 0.3f);
}

}  // namespace semline::vktest
