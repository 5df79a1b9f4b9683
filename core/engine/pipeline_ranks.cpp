// The pipeline's part in a line split across ranks: the step messages and the followers' loop, the
// all-reduces of tensor parallelism and the rows passed between pipeline stages.
//
// A step travels with the rows: the leader (rank 0, the first stage's tensor rank 0) shares it with
// its stage's other tensor ranks, and each stage's tensor rank 0 passes it to the next stage's
// before the stage's ranks send their rows; so a rank never waits for a step it cannot run yet, and
// stages run different steps at once (micro-batches).
#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "core/engine/pipeline.h"

namespace semline {

namespace {

// A step failed on this rank: the others wait in a collective they cannot finish, so the whole
// job stops (a communicator whose abort returned breaks its contract; the process ends anyway).
[[noreturn]] void stop_every_rank(Communicator& comm, std::string_view why) {
  comm.abort(why);
  std::abort();
}

}  // namespace

void Pipeline::gather_logits(int32_t n_outputs) {
  const auto t0 = std::chrono::steady_clock::now();
  const size_t part = static_cast<size_t>(head_hp_.n_vocab), rows = static_cast<size_t>(n_outputs);
  tp_->gather(logits_part_.data(), rows * part * sizeof(float), logits_gathered_.data(), 0);
  if (split_.tensor_rank() == 0) {  // tensor rank r's block [r][row][j] is row's logits r * part + j
    const size_t v = static_cast<size_t>(graph_.hp.n_vocab);
    for (size_t r = 0; r < static_cast<size_t>(split_.tensor); ++r)
      for (size_t i = 0; i < rows; ++i)
        std::copy_n(logits_gathered_.data() + (r * rows + i) * part, part, logits_.data() + i * v + r * part);
  }
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::span<const float> Pipeline::lead_step(const Batch& batch) {
  encode_step(&batch, message_);
  share_step(message_, false);
  try {
    return run_step(batch);
  } catch (const std::exception& e) {
    stop_every_rank(*comm_, e.what());
  }
}

// A step as the other ranks receive it: a header {1, n_tokens, n_seqs, n_outputs, payload ints}
// ({0, ...}: the line ends), then tokens, positions, seq, output rows and each sequence's n_past,
// slot, block count and blocks.
void Pipeline::encode_step(const Batch* b, StepMessage& m) {
  std::fill(std::begin(m.header), std::end(m.header), 0);
  m.body.clear();  // its capacity stays, step after step
  m.header[0] = b ? 1 : 0;
  if (!b) return;
  m.body.insert(m.body.end(), b->tokens, b->tokens + b->n_tokens);
  m.body.insert(m.body.end(), b->positions, b->positions + b->n_tokens);
  m.body.insert(m.body.end(), b->seq, b->seq + b->n_tokens);
  m.body.insert(m.body.end(), b->output_rows, b->output_rows + b->n_outputs);
  for (int32_t s = 0; s < b->n_seqs; ++s) {
    const SeqView& v = b->seqs[s];
    m.body.insert(m.body.end(), {v.n_past, v.slot, v.n_blocks});
    m.body.insert(m.body.end(), v.blocks, v.blocks + v.n_blocks);
  }
  m.header[1] = b->n_tokens;
  m.header[2] = b->n_seqs;
  m.header[3] = b->n_outputs;
  m.header[4] = static_cast<int32_t>(m.body.size());
}

void Pipeline::share_step(StepMessage& m, bool patient) {
  if (!tp_) return;
  const auto t0 = std::chrono::steady_clock::now();
  tp_->broadcast(m.header, sizeof m.header, 0, patient);
  if (m.header[0]) {
    m.body.resize(static_cast<size_t>(m.header[4]));
    tp_->broadcast(m.body.data(), m.body.size() * sizeof(int32_t), 0, false);
  }
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Pipeline::pass_step(const StepMessage& m) {
  const auto t0 = std::chrono::steady_clock::now();
  const int to = (split_.stage() + 1) * split_.tensor;
  comm_->send(m.header, sizeof m.header, to);
  if (m.header[0]) comm_->send(m.body.data(), m.body.size() * sizeof(int32_t), to);
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Pipeline::receive_step(StepMessage& m) {
  if (split_.tensor_rank() == 0) {  // a later stage's first rank: from the stage before
    const int from = (split_.stage() - 1) * split_.tensor;
    comm_->recv(m.header, sizeof m.header, from, true);
    if (m.header[0]) {
      m.body.resize(static_cast<size_t>(m.header[4]));
      comm_->recv(m.body.data(), m.body.size() * sizeof(int32_t), from, false);
    }
  }
  share_step(m, split_.tensor_rank() > 0);
}

// Two steps in flight without a deadlock: the leader's blocking calls (the step to its stage's
// tensor ranks and to stage 1, its rows to stage 1, the logits from the last stage) always meet
// ranks that have finished what they held. A step run while another is in the stages waits
// (held_) until that one's logits are back, and is handed on then; the first stage's other tensor
// ranks wait meanwhile in the send of their rows, which stage 1 takes once the step reaches it.
void Pipeline::submit_stage(const Batch& batch) {
  if (held_) throw Error("the line's stages hold two steps already: collect one before submitting another");
  StepMessage m;
  encode_step(&batch, m);
  try {
    share_step(m, false);
    run_step(batch);  // the first stage: up to the rows it hands on
    if (in_stages_.empty()) hand_on(m);
    else held_ = std::move(m);
  } catch (const std::exception& e) {
    stop_every_rank(*comm_, e.what());
  }
}

void Pipeline::hand_on(StepMessage& m) {
  pass_step(m);
  send_h(m.n_tokens());
  in_stages_.push_back(std::move(m));
}

std::span<const float> Pipeline::collect_stage() {
  if (in_stages_.empty()) throw Error("no step in flight to collect");
  const int32_t n_outputs = in_stages_.front().n_outputs();
  in_stages_.pop_front();
  const std::span<const float> logits{logits_.data(), static_cast<size_t>(n_outputs * graph_.hp.n_vocab)};
  try {
    if (n_outputs > 0) comm_->recv(logits_.data(), logits.size_bytes(), (split_.pipeline - 1) * split_.tensor, false);
    if (held_) {
      hand_on(*held_);
      held_.reset();
    }
  } catch (const std::exception& e) {
    stop_every_rank(*comm_, e.what());
  }
  return logits;
}

void Pipeline::follow() {
  if (!follower()) throw Error("only a following rank of a line split across ranks follows the leader's steps");
  const bool passes = !split_.last_stage() && split_.tensor_rank() == 0;  // the step, to the next stage
  try {
    while (true) {
      StepMessage& m = message_;
      receive_step(m);
      if (m.header[0] == 0) {
        if (passes) pass_step(m);
        return;
      }
      const int32_t n = m.n_tokens(), n_seqs = m.header[2], n_out = m.n_outputs();
      StepArrays& a = received_;
      a.clear();
      const int32_t* p = m.body.data();
      a.tokens.assign(p, p + n), p += n;
      a.positions.assign(p, p + n), p += n;
      a.seq.assign(p, p + n), p += n;
      a.output_rows.assign(p, p + n_out), p += n_out;
      // The views point into the message, which stays unchanged until the step has run.
      for (int32_t s = 0; s < n_seqs; ++s, p += 3 + p[2])
        a.seqs.push_back(SeqView{.n_past = p[0], .blocks = p + 3, .n_blocks = p[2], .slot = p[1]});
      run_step(a.batch());
      if (passes) pass_step(m);
      if (!split_.last_stage()) send_h(n);
    }
  } catch (const std::exception& e) {
    stop_every_rank(*comm_, e.what());
  }
}

void Pipeline::all_reduce(Backend* on, Buffer& buf, int64_t rows) {
  const size_t count = static_cast<size_t>(rows * graph_.hp.n_embd);
  on->stream().synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  if (buf.host()) {
    tp_->all_reduce_sum(static_cast<float*>(buf.host()), count);
  } else {
    const Tensor t = make_tensor(DType::F32, {graph_.hp.n_embd, rows}, nullptr, &buf, 0);
    on->copy_to_host(t, rows_host_.data(), count * sizeof(float), on->stream());
    on->stream().synchronize();
    tp_->all_reduce_sum(rows_host_.data(), count);
    on->copy_to_device(rows_host_.data(), t, count * sizeof(float), on->stream());
    on->stream().synchronize();
  }
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++all_reduces_;
}

void Pipeline::exchange_rows(Backend* on, Buffer& buf, int64_t floats, int peer, bool send) {
  const size_t bytes = static_cast<size_t>(floats) * sizeof(float);
  on->stream().synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor t = make_tensor(DType::F32, {floats}, buf.host(), &buf, 0);
  float* host = buf.host() ? static_cast<float*>(buf.host()) : rows_host_.data();
  if (send) {
    if (!buf.host()) {
      on->copy_to_host(t, host, bytes, on->stream());
      on->stream().synchronize();
    }
    comm_->send(host, bytes, peer);
  } else {
    comm_->recv(host, bytes, peer, false);
    if (!buf.host()) {
      on->copy_to_device(host, t, bytes, on->stream());
      on->stream().synchronize();
    }
  }
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace semline
