#include "core/engine/pipeline.h"

#include "core/host/plugin_log.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

namespace semline {

namespace {

// Where a station sits in the line ("block 3 attention"); its entry's key and plugin come from the
// guard around every call into the plugin (core/host/guard.h), so errors name them once.
std::string describe(const GraphNode& n) {
  return n.layer >= 0 ? "block " + std::to_string(n.layer) + " " + n.station : n.station;
}

// For the plugin's log: the station and the implementation serving it.
std::string log_name(const GraphNode& n) {
  return describe(n) + " (" + n.impl->entry.variant + "@" + n.backend + ", plugin " + n.impl->plugin + ")";
}

}  // namespace

void StepArrays::clear() {
  tokens.clear();
  positions.clear();
  seq.clear();
  output_rows.clear();
  seqs.clear();
}

Batch StepArrays::batch() const {
  Batch b;
  b.n_tokens = static_cast<int32_t>(tokens.size());
  b.tokens = tokens.data();
  b.positions = positions.data();
  b.seq = seq.data();
  b.n_seqs = static_cast<int32_t>(seqs.size());
  b.seqs = seqs.data();
  b.n_outputs = static_cast<int32_t>(output_rows.size());
  b.output_rows = output_rows.data();
  return b;
}

PipelineOptions pipeline_options(const Config& config) {
  PipelineOptions o;
  o.threads = config.runtime.threads;
  o.max_batch_tokens = config.runtime.max_batch_tokens;
  o.kv.block_tokens = config.kv_cache.block_tokens;
  o.kv.dtype = config.kv_cache.dtype == "f16" ? DType::F16 : config.kv_cache.dtype == "q8_0" ? DType::Q8_0 : DType::F32;
  o.kv.context = config.runtime.context;
  o.kv.max_seqs = config.runtime.max_seqs;
  o.kv.n_blocks = config.kv_cache.blocks;
  o.kv.size_bytes = static_cast<int64_t>(config.kv_cache.size_mib) << 20;
  o.kv.prefix_caching = config.kv_cache.prefix_caching;
  o.backend_params = config.backends;
  o.tensor = config.parallel.tensor;
  o.pipeline = config.parallel.pipeline;
  o.expert_parallel = config.parallel.expert_parallel;
  return o;
}

std::unique_ptr<Tokenizer> make_tokenizer(const GraphNode& n, const ModelView& model) {
  StageContext ctx;
  ctx.model = &model;
  ctx.station = n.station;
  ctx.params = n.params;
  ctx.log = plugin_log(log_name(n));
  try {
    return n.impl->entry.make_tokenizer(ctx);
  } catch (const std::exception& e) {
    throw Error(describe(n) + ": " + e.what());
  }
}

struct Pipeline::Station {
  const GraphNode* node = nullptr;
  std::unique_ptr<Stage> stage;
  Backend* backend = nullptr;
  bool stateful = false;  // a recurrent mixer: its step carries the layer's StateLayer
};

// The residual stream h and the normed rows x, one copy per backend; the line moves them between
// backends only where two consecutive stations run on different ones. x2: the second sub-layer's
// normed rows of a parallel-residual block, normed before the first sub-layer adds to h. y: an
// op's result before its post norm adds it to h (sandwich norms).
struct Pipeline::Activations {
  struct OnBackend {
    std::unique_ptr<Buffer> h, x, x2, y;
  };
  std::map<Backend*, OnBackend> per_backend;
  Backend* h_on = nullptr;
  Backend* x_on = nullptr;
  Backend* x2_on = nullptr;
  Backend* y_on = nullptr;
  std::unique_ptr<Buffer> logits;
  Backend* logits_on = nullptr;
  std::vector<float> staging;
  std::vector<float> zeros;  // tensor parallelism: a follower's h before its sub-layer adds
};

Pipeline::Pipeline(const PipelineGraph& graph, const ModelView& model, const StageRegistry& registry,
                   const PipelineOptions& options)
    : graph_(graph), registry_(registry), max_batch_(options.max_batch_tokens) {
  block_hp_ = graph_.hp;
  const int ranks = options.tensor * options.pipeline;
  const std::string asked = "[parallel] tensor = " + std::to_string(options.tensor) +
                            ", pipeline = " + std::to_string(options.pipeline);
  if (ranks > 1 && (!options.comm || options.comm->size() != ranks))
    throw Error(asked + ": this line is built in one process; semline run, chat, serve and bench's speed tests "
                        "split a line across the ranks mpirun starts (the A/B bench and draft models do not)");
  if (options.expert_parallel && options.tensor == 1)
    throw Error(asked + ", expert_parallel = true: the experts are split among the tensor ranks; set tensor = N too");
  if (ranks > 1) {
    comm_ = options.comm;
    split_ = LineSplit{options.tensor, options.pipeline, comm_->rank()};
  }
  if (split_.tensor > 1) {  // every rank splits alike, so the collective split meets every rank
    if (split_.pipeline > 1) stage_comm_ = comm_->split(split_.stage(), split_.tensor_rank());
    tp_ = stage_comm_ ? stage_comm_.get() : comm_;
  }
  std::tie(layer_begin_, layer_end_) = split_.layers(graph_.hp.n_layer);
  head_hp_ = graph_.hp;
  if (split_.tensor > 1) {
    block_hp_ = shard_hparams(graph_, split_.tensor, split_.tensor_rank(), options.expert_parallel);
    shard_ = std::make_unique<ShardedModel>(model, block_nodes(graph_), split_.tensor_rank(), split_.tensor,
                                            options.expert_parallel);
    // Where the vocabulary does not divide, the last stage's tensor rank 0 computes every logit.
    head_split_ = graph_.hp.n_vocab % split_.tensor == 0;
    if (head_split_) {
      head_shard_ = std::make_unique<ShardedModel>(model, std::vector<const GraphNode*>{&graph_.head},
                                                   split_.tensor_rank(), split_.tensor);
      head_hp_.n_vocab /= split_.tensor;
    }
    spdlog::info("tensor parallel: {}, this rank's share of the block weights {:.1f} MiB{}{}", tp_->describe(),
                 shard_->shard_bytes() / 1048576.0,
                 options.expert_parallel
                     ? fmt::format(" (experts {}..{})", block_hp_.extra.at("expert_first"),
                                   block_hp_.extra.at("expert_first") + block_hp_.extra.at("expert_count") - 1)
                     : std::string(),
                 head_split_ ? fmt::format(", of the head {:.1f} MiB", head_shard_->shard_bytes() / 1048576.0)
                             : std::string(", the head on tensor rank 0 alone (n_vocab does not divide)"));
  }
  if (split_.pipeline > 1) {
    for (const auto& block : graph_.blocks)
      for (const GraphSublayer& sub : block)
        if (sub.op.kind == StageKind::Ssm)
          throw Error(asked + ": block " + std::to_string(sub.op.layer) +
                      " mixes with a recurrent state, which the stages do not pass on; run the model in one process");
    if (graph_.hp.n_layer < split_.pipeline)  // every rank refuses alike
      throw Error(asked + ": the model has " + std::to_string(graph_.hp.n_layer) +
                  (graph_.hp.n_layer == 1 ? " block" : " blocks") + ", fewer than the stages");
    spdlog::info("pipeline parallel: {}, stage {} of {}: blocks {}..{}", comm_->describe(), split_.stage() + 1,
                 split_.pipeline, layer_begin_, layer_end_ - 1);
  }
  for (const std::string& name : graph_.backends) {
    const RegisteredBackend* rb = registry.find_backend(name);
    if (!rb) throw Error("backend '" + name + "' is not registered");
    if (rb->entry.probe) {
      auto reasons = rb->entry.probe();
      if (!reasons.empty()) throw Error("backend '" + name + "' cannot run here: " + reasons.front());
    }
    std::map<std::string, ConfigValue> given;
    if (auto it = options.backend_params.find(name); it != options.backend_params.end()) given = it->second;
    for (const ParamSpec& p : rb->entry.params)
      if (p.name == "threads" && !given.count("threads")) given["threads"] = ConfigValue{int64_t{options.threads}, {}};
    Params params = validate_params(given, rb->entry.params, "backends." + name);
    try {
      backends_[name] = rb->entry.create(params, plugin_log("backend " + name));
    } catch (const std::exception& e) {
      throw Error("backend '" + name + "' (plugin " + rb->plugin + "): " + e.what());
    }
    spdlog::debug("backend {}: {}", name, backends_[name]->info().device);
  }

  auto context_for = [&](const GraphNode& n, Backend* b) {
    StageContext ctx;
    ctx.backend = b;
    const bool head = n.kind == StageKind::Head;
    ctx.model = n.layer >= 0 && shard_ ? shard_.get() : head && head_shard_ ? head_shard_.get() : &model;
    ctx.hp = n.layer >= 0 ? &block_hp_ : head ? &head_hp_ : &graph_.hp;
    ctx.layer = n.layer;
    ctx.station = n.station;
    ctx.tensors = n.tensors;
    ctx.params = n.params;
    ctx.max_batch_tokens = max_batch_;
    ctx.log = plugin_log(log_name(n));
    return ctx;
  };
  auto guarded = [&](const GraphNode& n, auto&& make) {
    try {
      return make();
    } catch (const std::exception& e) {
      throw Error(describe(n) + ": " + e.what());
    }
  };

  tokenizer_ = make_tokenizer(graph_.tokenizer, model);

  // This rank's part of the line: every station unless the blocks are cut into stages.
  std::vector<const GraphNode*> line;
  if (split_.first_stage()) line.push_back(&graph_.embedding);
  bool post_norms = false;
  for (int32_t l = layer_begin_; l < layer_end_; ++l)
    for (const GraphSublayer& sub : graph_.blocks[static_cast<size_t>(l)]) {
      line.push_back(&sub.norm);
      line.push_back(&sub.op);
      if (sub.post_norm) line.push_back(&*sub.post_norm);
      post_norms = post_norms || sub.post_norm;
    }
  if (computes_logits()) {
    line.push_back(&graph_.output_norm);
    line.push_back(&graph_.head);
  }
  std::vector<Backend*> attention_backends(graph_.hp.n_layer, nullptr);
  std::vector<bool> mixes(graph_.hp.n_layer, false);
  state_ = std::make_unique<StatePool>(static_cast<int32_t>(graph_.hp.n_layer), std::max(options.kv.max_seqs, 1));
  for (const GraphNode* n : line) {
    Station s;
    s.node = n;
    s.backend = &backend(n->backend);
    s.stage = guarded(*n, [&] { return n->impl->entry.make_stage(context_for(*n, s.backend)); });
    if (n->kind == StageKind::Attention) attention_backends.at(n->layer) = s.backend;
    const std::vector<int64_t> sizes = guarded(*n, [&] { return s.stage->state_sizes(); });
    if (!sizes.empty()) {
      if (n->layer < 0) throw Error(describe(*n) + ": a recurrent state outside the blocks");
      state_->add_layer(n->layer, *s.backend, sizes);
      s.stateful = true;
    }
    if (n->kind == StageKind::Attention || s.stateful) mixes.at(n->layer) = true;
    stations_.push_back(std::move(s));
  }
  for (int32_t l = layer_begin_; l < layer_end_; ++l)
    if (!mixes[l]) throw Error("block " + std::to_string(l) + " has neither an attention station nor a recurrent mixer");

  KvCacheOptions kvo = options.kv;
  if (kvo.context <= 0) kvo.context = static_cast<int32_t>(graph_.hp.n_ctx_train > 0 ? graph_.hp.n_ctx_train : 2048);
  kvo.window = kv_window();
  if (comm_) {  // the leader releases blocks behind every rank's layers
    std::vector<int32_t> windows(static_cast<size_t>(comm_->size()));
    comm_->all_gather(&kvo.window, sizeof kvo.window, windows.data());
    kvo.window = std::ranges::find(windows, 0) != windows.end() ? 0 : std::ranges::max(windows);
  }
  kvo.max_step_tokens = max_batch_;
  if (follower())  // the leader's block tables index a pool of the leader's size
    comm_->broadcast(&kvo.n_blocks, sizeof kvo.n_blocks, 0, false);
  kv_ = std::make_unique<KvCache>(kvo, attention_backends, block_hp_.n_head_kv, graph_.hp.head_dim);
  if (comm_ && !follower()) {
    int64_t n_blocks = kv_->blocks().n_blocks();
    comm_->broadcast(&n_blocks, sizeof n_blocks, 0, false);
  }
  if (recurrent()) {  // a cached block holds keys, not the state at its end: that comes from the pool
    kv_->blocks().set_prefix_hook(
        [this](int32_t seq, uint64_t key, int32_t n_tokens) { return state_->resume(seq, key, n_tokens); });
    spdlog::debug("recurrent state: {} sequences, {:.2f} MiB", state_->slots(), state_->bytes() / 1048576.0);
  }
  spdlog::debug("kv cache: {} tokens x {} layers, {} blocks of {}, {:.1f} MiB{}", kvo.context, graph_.hp.n_layer,
                kv_->free_blocks(), kvo.block_tokens, kv_->bytes() / 1048576.0,
                kvo.window > 0 ? fmt::format(", blocks released behind a window of {}", kvo.window) : "");

  act_ = std::make_unique<Activations>();
  const size_t row_bytes = static_cast<size_t>(graph_.hp.n_embd) * sizeof(float);
  for (auto& [name, b] : backends_) {
    auto& ab = act_->per_backend[b.get()];
    ab.h = b->alloc(row_bytes * max_batch_);
    ab.x = b->alloc(row_bytes * max_batch_);
    if (graph_.hp.parallel_residual) ab.x2 = b->alloc(row_bytes * max_batch_);
    if (post_norms) ab.y = b->alloc(row_bytes * max_batch_);
  }
  if (computes_logits()) {
    act_->logits_on = stations_.back().backend;
    act_->logits = act_->logits_on->alloc(static_cast<size_t>(head_hp_.n_vocab) * sizeof(float) * max_batch_);
  }
  if (head_split_) {
    logits_part_.resize(static_cast<size_t>(head_hp_.n_vocab) * max_batch_);
    if (split_.tensor_rank() == 0) logits_gathered_.resize(static_cast<size_t>(graph_.hp.n_vocab) * max_batch_);
  }
  act_->staging.resize(static_cast<size_t>(graph_.hp.n_embd) * max_batch_);
  if (split_.tensor_rank() > 0) act_->zeros.resize(act_->staging.size());
  if (comm_) rows_host_.resize(act_->staging.size());
  if (!follower() || (computes_logits() && split_.tensor_rank() == 0))
    logits_.resize(static_cast<size_t>(graph_.hp.n_vocab) * max_batch_);
}

Pipeline::~Pipeline() {
  if (comm_ && !follower()) {
    try {
      while (!in_stages_.empty()) collect();  // the stages finish what they hold first
      encode_step(nullptr, message_);
      share_step(message_, false);
      if (split_.pipeline > 1) pass_step(message_);
    } catch (const std::exception& e) {
      spdlog::error("a line split across ranks: the followers were not told the line ends: {}", e.what());
    }
  }
  // Stages and buffers go before the backends that own their memory.
  stations_.clear();
  kv_.reset();
  state_.reset();
  act_.reset();
}

Backend& Pipeline::backend(const std::string& name) { return *backends_.at(name); }

int32_t Pipeline::kv_window() const {
  // Blocks may be released only behind the reach of every layer: the widest window, and none at
  // all when one layer reads the whole context.
  int32_t widest = 0;
  for (const Station& s : stations_) {
    if (s.node->kind != StageKind::Attention) continue;
    const int32_t w = s.stage->kv_window();
    if (w <= 0) return 0;
    widest = std::max(widest, w);
  }
  return widest;
}

void Pipeline::run(Station& s, const Tensor& in, const Tensor& out, const Step& step) {
  auto t0 = std::chrono::steady_clock::now();
  try {
    s.stage->forward(in, out, step);
    if (!metering_) return;
    step.stream.synchronize();
    StageMeter& m = meters_[s.node->kind];
    m.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const StageCost c = s.stage->cost(step.batch);
    m.cost.flops += c.flops;
    m.cost.bytes += c.bytes;
  } catch (const std::exception& e) {
    throw Error(describe(*s.node) + ": " + e.what());
  }
}

std::span<const float> Pipeline::forward(const Batch& batch) {
  submit(batch);
  return collect();
}

void Pipeline::submit(const Batch& batch) {
  check_batch(batch);
  if (depth() > 1) return submit_stage(batch);
  if (has_landed_) throw Error("a step is in flight already: collect it before submitting another");
  landed_ = comm_ ? lead_step(batch) : run_step(batch);
  has_landed_ = true;
}

std::span<const float> Pipeline::collect() {
  if (depth() > 1) return collect_stage();
  if (!has_landed_) throw Error("no step in flight to collect");
  has_landed_ = false;
  return landed_;
}

void Pipeline::send_h(int32_t n_tokens) {
  exchange_rows(act_->h_on, *act_->per_backend.at(act_->h_on).h, static_cast<int64_t>(n_tokens) * graph_.hp.n_embd,
                split_.rank_in_stage(split_.stage() + 1), true);
}

void Pipeline::check_batch(const Batch& batch) const {
  if (follower()) throw Error("a following rank runs the leader's steps (Pipeline::follow), not steps of its own");
  if (batch.n_tokens <= 0 || batch.n_tokens > max_batch_)
    throw Error("a step carries " + std::to_string(batch.n_tokens) + " tokens; the line takes 1.." +
                std::to_string(max_batch_) + " (runtime.max_batch_tokens)");
  if (batch.n_outputs < 0 || batch.n_outputs > batch.n_tokens) throw Error("a step asks for more outputs than tokens");
  for (int32_t t = 0; t < batch.n_tokens; ++t)
    if (batch.tokens[t] < 0 || batch.tokens[t] >= graph_.hp.n_vocab)
      throw Error("token id " + std::to_string(batch.tokens[t]) + " is outside the vocabulary (0.." +
                  std::to_string(graph_.hp.n_vocab - 1) + ")");
}

std::span<const float> Pipeline::run_step(Batch batch) {
  batch.step = ++step_;
  const int64_t n = batch.n_tokens, d = graph_.hp.n_embd;
  auto rows = [&](Buffer& buf, int64_t width, int64_t count) {
    return make_tensor(DType::F32, {width, count}, buf.host(), &buf, 0);
  };
  auto h_on = [&](Backend* b) { return rows(*act_->per_backend.at(b).h, d, n); };
  auto x_on = [&](Backend* b) { return rows(*act_->per_backend.at(b).x, d, n); };
  auto x2_on = [&](Backend* b) { return rows(*act_->per_backend.at(b).x2, d, n); };
  auto y_on = [&](Backend* b) { return rows(*act_->per_backend.at(b).y, d, n); };
  // Brings h or x to backend `to` through host memory when its latest copy lives elsewhere.
  auto move = [&](Backend*& where, Backend* to, auto view) {
    if (where == to) return;
    const size_t bytes = static_cast<size_t>(n * d) * sizeof(float);
    where->copy_to_host(view(where), act_->staging.data(), bytes, where->stream());
    where->stream().synchronize();
    to->copy_to_device(act_->staging.data(), view(to), bytes, to->stream());
    where = to;
  };

  const bool tp = split_.tensor > 1;
  size_t i = 0;
  if (split_.first_stage()) {
    Station& emb = stations_[i++];
    run(emb, h_on(emb.backend), h_on(emb.backend), Step{batch, emb.backend->stream()});
    act_->h_on = emb.backend;
  } else {  // the previous stage's h
    act_->h_on = stations_[0].backend;
    exchange_rows(act_->h_on, *act_->per_backend.at(act_->h_on).h, n * d, split_.rank_in_stage(split_.stage() - 1), false);
  }
  if (recurrent()) state_->check_step(batch);
  auto run_op = [&](Station& op, const Tensor& x, const Tensor& out, OutMode mode) {
    Step step{batch, op.backend->stream()};
    if (op.node->kind == StageKind::Attention) step.kv = &kv_->layer(op.node->layer);
    if (op.stateful) step.state = state_->layer(op.node->layer);
    step.out = mode;
    run(op, x, out, step);
  };
  for (int32_t l = layer_begin_; l < layer_end_; ++l) {
    const auto& block = graph_.blocks[static_cast<size_t>(l)];
    if (graph_.hp.parallel_residual) {
      // h += op0(norm0(h)) + op1(norm1(h)): the second norm reads h before the first op adds to it.
      Station& norm1 = stations_[i + 2];
      move(act_->h_on, norm1.backend, h_on);
      run(norm1, h_on(norm1.backend), x2_on(norm1.backend), Step{batch, norm1.backend->stream()});
      act_->x2_on = norm1.backend;
    }
    for (size_t k = 0; k < block.size(); ++k) {
      Station& norm = stations_[i++];
      Station& op = stations_[i++];
      if (graph_.hp.parallel_residual && k == 1) {  // its norm ran above
        move(act_->x2_on, op.backend, x2_on);
        move(act_->h_on, op.backend, h_on);
        run_op(op, x2_on(op.backend), h_on(op.backend), OutMode::Natural);
        if (tp) all_reduce(op.backend, *act_->per_backend.at(op.backend).h, n);
        continue;
      }
      move(act_->h_on, norm.backend, h_on);
      run(norm, h_on(norm.backend), x_on(norm.backend), Step{batch, norm.backend->stream()});
      act_->x_on = norm.backend;
      move(act_->x_on, op.backend, x_on);
      if (!block[k].post_norm) {
        move(act_->h_on, op.backend, h_on);
        // Tensor parallelism: each rank's op adds its partial result, so tensor rank 0's is added to
        // h and another's to zeros; the all-reduce then sums h + every part on every rank. (A
        // parallel-residual block sums once, after its second op.)
        if (split_.tensor_rank() > 0) {
          const Tensor h = h_on(op.backend);
          op.backend->copy_to_device(act_->zeros.data(), h, static_cast<size_t>(n * d) * sizeof(float),
                                     op.backend->stream());
        }
        run_op(op, x_on(op.backend), h_on(op.backend), OutMode::Natural);
        if (tp && !graph_.hp.parallel_residual) all_reduce(op.backend, *act_->per_backend.at(op.backend).h, n);
        continue;
      }
      // h += post_norm(op(x)): the op writes y, the post norm adds its normed rows to h.
      Station& post = stations_[i++];
      run_op(op, x_on(op.backend), y_on(op.backend), OutMode::Write);
      if (tp) all_reduce(op.backend, *act_->per_backend.at(op.backend).y, n);
      act_->y_on = op.backend;
      move(act_->y_on, post.backend, y_on);
      move(act_->h_on, post.backend, h_on);
      Step add{batch, post.backend->stream()};
      add.out = OutMode::Add;
      run(post, y_on(post.backend), h_on(post.backend), add);
    }
  }
  const int64_t v = graph_.hp.n_vocab;
  const std::span<const float> logits_out{logits_.data(), static_cast<size_t>(batch.n_outputs * v)};
  if (!split_.last_stage()) return {};  // the rows go on to the next stage in hand_on or follow
  if (!computes_logits()) return {};    // another tensor rank: the stage's tensor rank 0 computes them
  Station& onorm = stations_[i++];
  move(act_->h_on, onorm.backend, h_on);
  run(onorm, h_on(onorm.backend), x_on(onorm.backend), Step{batch, onorm.backend->stream()});
  act_->x_on = onorm.backend;
  Station& head = stations_[i++];
  move(act_->x_on, head.backend, x_on);
  const int64_t v_here = head_hp_.n_vocab;  // this rank's share of each row of logits
  Tensor logits = rows(*act_->logits, v_here, batch.n_outputs > 0 ? batch.n_outputs : 1);
  if (batch.n_outputs > 0) {
    run(head, x_on(head.backend), logits, Step{batch, head.backend->stream()});
    head.backend->copy_to_host(logits, head_split_ ? logits_part_.data() : logits_.data(),
                               static_cast<size_t>(batch.n_outputs * v_here) * sizeof(float), head.backend->stream());
  }
  for (auto& [name, b] : backends_) b->stream().synchronize();
  if (head_split_) {
    if (batch.n_outputs > 0) gather_logits(batch.n_outputs);
    if (split_.tensor_rank() > 0) return {};
  }
  if (recurrent()) state_->commit_step(batch);
  if (follower()) {  // the last stage's tensor rank 0, after the leader's stage
    if (batch.n_outputs > 0) comm_->send(logits_.data(), logits_out.size_bytes(), 0);
    return {};
  }
  return logits_out;
}

}  // namespace semline
