#include "core/serve/metrics.h"

#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace semline::serve {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// Latency buckets from 1 ms to 5 min, as vLLM's.
const Histogram::BucketBoundaries kSeconds = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                                              2.5,   5.0,   7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 320.0};

double seconds(Clock::time_point a, Clock::time_point b) {
  return a == Clock::time_point{} || b == Clock::time_point{} ? 0.0 : std::chrono::duration<double>(b - a).count();
}

}  // namespace

struct Metrics::Families {
  Family<Histogram>& ttft;
  Family<Histogram>& itl;
  Family<Histogram>& e2e;
  Family<Histogram>& queue;
  Family<Histogram>& prefill;
  Family<Histogram>& decode;
  Family<Counter>& prompt_tokens;
  Family<Counter>& generation_tokens;
  Family<Counter>& success;
  Family<Counter>& errors;
  Family<Counter>& prefix_queries;
  Family<Counter>& prefix_hits;
  Family<Counter>& preemptions;
  Family<Counter>& spec_drafts;
  Family<Counter>& spec_draft_tokens;
  Family<Counter>& spec_accepted_tokens;
  Family<Gauge>& running;
  Family<Gauge>& waiting;
  Family<Gauge>& kv_usage;
};

// One variant's series; counters fed from the engine's running totals keep the last totals seen.
struct Metrics::Series {
  std::string variant;
  Histogram &ttft, &itl, &e2e, &queue, &prefill, &decode;
  Counter &prompt_tokens, &generation_tokens, &prefix_queries, &prefix_hits, &preemptions;
  Counter &spec_drafts, &spec_draft_tokens, &spec_accepted_tokens;
  Gauge &running, &waiting, &kv_usage;
  EngineCounters last;
};

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto h = [&](const char* name, const char* help) -> Family<Histogram>& {
    return prometheus::BuildHistogram().Name(std::string("semline:") + name).Help(help).Register(*registry_);
  };
  auto c = [&](const char* name, const char* help) -> Family<Counter>& {
    return prometheus::BuildCounter().Name(std::string("semline:") + name).Help(help).Register(*registry_);
  };
  auto g = [&](const char* name, const char* help) -> Family<Gauge>& {
    return prometheus::BuildGauge().Name(std::string("semline:") + name).Help(help).Register(*registry_);
  };
  f_ = std::unique_ptr<Families>(new Families{
      h("time_to_first_token_seconds", "Seconds from a request's arrival to its first token"),
      h("inter_token_latency_seconds", "Seconds between consecutive tokens of a choice"),
      h("e2e_request_latency_seconds", "Seconds from a request's arrival to its end"),
      h("request_queue_time_seconds", "Seconds a request waited before its first step"),
      h("request_prefill_time_seconds", "Seconds from a request's first step to its first token"),
      h("request_decode_time_seconds", "Seconds from a request's first token to its end"),
      c("prompt_tokens_total", "Prompt tokens computed (prefix-cache hits not counted)"),
      c("generation_tokens_total", "Tokens generated"),
      c("request_success_total", "Choices finished, by reason"),
      c("request_errors_total", "Requests answered with an error, by HTTP status"),
      c("prefix_cache_queries", "Prompt tokens looked up in the prefix cache"),
      c("prefix_cache_hits", "Prompt tokens found in the prefix cache"),
      c("num_preemptions_total", "Sequences that gave their blocks back and were recomputed"),
      c("spec_decode_num_drafts", "Speculative decoding: steps of a sequence that verified drafts"),
      c("spec_decode_num_draft_tokens", "Speculative decoding: draft tokens verified"),
      c("spec_decode_num_accepted_tokens", "Speculative decoding: draft tokens the model agreed with"),
      g("num_requests_running", "Sequences in the running set"),
      g("num_requests_waiting", "Sequences waiting for admission"),
      g("kv_cache_usage_perc", "Share of the KV cache's blocks held by sequences, 0..1"),
  });
}

Metrics::~Metrics() = default;

Metrics::Series& Metrics::of(const std::string& variant) {
  auto it = series_.find(variant);
  if (it != series_.end()) return *it->second;
  const prometheus::Labels l = {{"variant", variant}};
  auto s = std::unique_ptr<Series>(new Series{
      variant,
      f_->ttft.Add(l, kSeconds), f_->itl.Add(l, kSeconds), f_->e2e.Add(l, kSeconds), f_->queue.Add(l, kSeconds),
      f_->prefill.Add(l, kSeconds), f_->decode.Add(l, kSeconds),
      f_->prompt_tokens.Add(l), f_->generation_tokens.Add(l), f_->prefix_queries.Add(l), f_->prefix_hits.Add(l),
      f_->preemptions.Add(l), f_->spec_drafts.Add(l), f_->spec_draft_tokens.Add(l), f_->spec_accepted_tokens.Add(l),
      f_->running.Add(l), f_->waiting.Add(l), f_->kv_usage.Add(l), EngineCounters{}});
  return *series_.emplace(variant, std::move(s)).first->second;
}

void Metrics::choice_finished(const std::string& variant, const ChoiceStats& st, const std::string& reason) {
  std::lock_guard lock(mutex_);
  Series& s = of(variant);
  f_->success.Add({{"variant", variant}, {"finished_reason", reason}}).Increment();
  if (st.first_token != Clock::time_point{}) {
    s.ttft.Observe(seconds(st.arrival, st.first_token));
    s.prefill.Observe(seconds(st.scheduled, st.first_token));
    s.decode.Observe(seconds(st.first_token, st.finished));
  }
  if (st.scheduled != Clock::time_point{}) s.queue.Observe(seconds(st.arrival, st.scheduled));
  s.e2e.Observe(seconds(st.arrival, st.finished));
}

void Metrics::inter_token(const std::string& variant, double secs, size_t tokens) {
  std::lock_guard lock(mutex_);
  Series& s = of(variant);
  for (size_t i = 0; i < tokens; ++i) s.itl.Observe(secs / static_cast<double>(tokens));
}

void Metrics::error(const std::string& variant, int status) {
  std::lock_guard lock(mutex_);
  of(variant);
  f_->errors.Add({{"variant", variant}, {"code", std::to_string(status)}}).Increment();
}

void Metrics::engine(const std::string& variant, const EngineCounters& c) {
  std::lock_guard lock(mutex_);
  Series& s = of(variant);
  auto grow = [](Counter& counter, int64_t now, int64_t& last) {
    if (now > last) counter.Increment(static_cast<double>(now - last));
    last = now;
  };
  grow(s.prompt_tokens, c.prompt_tokens, s.last.prompt_tokens);
  grow(s.generation_tokens, c.generation_tokens, s.last.generation_tokens);
  grow(s.prefix_queries, c.prefix_queried_tokens, s.last.prefix_queried_tokens);
  grow(s.prefix_hits, c.prefix_hit_tokens, s.last.prefix_hit_tokens);
  grow(s.preemptions, c.preemptions, s.last.preemptions);
  grow(s.spec_drafts, c.spec_drafts, s.last.spec_drafts);
  grow(s.spec_draft_tokens, c.spec_draft_tokens, s.last.spec_draft_tokens);
  grow(s.spec_accepted_tokens, c.spec_accepted_tokens, s.last.spec_accepted_tokens);
  s.running.Set(static_cast<double>(c.running));
  s.waiting.Set(static_cast<double>(c.waiting));
  s.kv_usage.Set(c.kv_usage);
}

std::string Metrics::text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace semline::serve
