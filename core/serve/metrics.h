// The server's meters at /metrics, in Prometheus's text format (prometheus-cpp), with vLLM's names
// under the semline: prefix. Every series carries a `variant` label: the variant of the line that
// served the request (live A/B), "default" when the server runs one.
//   histograms: time_to_first_token_seconds, inter_token_latency_seconds,
//     e2e_request_latency_seconds, request_queue_time_seconds, request_prefill_time_seconds,
//     request_decode_time_seconds
//   counters: prompt_tokens_total, generation_tokens_total, request_success_total{finished_reason},
//     request_errors_total{code}, prefix_cache_queries, prefix_cache_hits, num_preemptions_total,
//     spec_decode_num_drafts, spec_decode_num_draft_tokens, spec_decode_num_accepted_tokens
//   gauges: num_requests_running, num_requests_waiting, kv_cache_usage_perc
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/engine/engine.h"

namespace prometheus {
class Registry;
}

namespace semline::serve {

class Metrics {
 public:
  Metrics();
  ~Metrics();

  // A choice finished (finished_reason "stop", "length" or "abort").
  void choice_finished(const std::string& variant, const ChoiceStats& s, const std::string& finished_reason);
  // Tokens of one update arrived `seconds` after the previous ones of their choice.
  void inter_token(const std::string& variant, double seconds, size_t tokens);
  // A request answered with an error status.
  void error(const std::string& variant, int status);
  // After an engine step: the engine's running totals and load.
  void engine(const std::string& variant, const EngineCounters& c);

  std::string text() const;  // the exposition

 private:
  struct Series;
  Series& of(const std::string& variant);
  std::shared_ptr<prometheus::Registry> registry_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Series>> series_;
  struct Families;
  std::unique_ptr<Families> f_;
};

}  // namespace semline::serve
