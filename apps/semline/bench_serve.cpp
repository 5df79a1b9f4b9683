// semline bench serve: a load generator for OpenAI-compatible servers (semline serve, llama-server,
// vLLM). N client threads each send streaming /v1/completions requests one after another until the
// round's requests are done; every token's arrival is timed. Reported per concurrency: aggregate
// generation throughput (tokens over the round's wall time, prompts included), decode throughput
// (concurrency over the median inter-token latency: the streams' steady rate), time to first token
// and inter-token latency (p50, p99), errors, and retries of connections dropped before an answer.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app.h"

namespace semline::app {

namespace {

using clock_type = std::chrono::steady_clock;

struct LoadOpts {
  std::string url = "http://127.0.0.1:8080";
  std::string model;
  std::string api_key;
  std::vector<int> concurrency = {1, 8, 32};
  int requests = 0;  // per round; 0: 4 x concurrency
  int prompt_words = 64;
  std::string prompt_file;  // when set: every prompt is this text, then " (request N)"
  int max_tokens = 128;
  std::string output = "md";
};

struct RequestTiming {
  bool ok = false;
  bool transport = false;        // no byte of an answer arrived (refused or dropped connection)
  std::string error;
  double ttft = 0;               // seconds
  std::vector<double> gaps;      // seconds between consecutive tokens
  int64_t tokens = 0;
};

struct Round {
  int concurrency = 0, requests = 0, errors = 0, retries = 0;
  int64_t tokens = 0;
  double seconds = 0;
  double ttft_p50 = 0, ttft_p99 = 0, itl_p50 = 0, itl_p99 = 0;
  std::string first_error;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

// A prompt of distinct words per request, so no two share a cached prefix beyond the first word.
std::string prompt_for(int index, int words) {
  static const char* vocab[] = {"the", "little", "dog", "ran", "to", "a", "big", "tree", "and", "saw", "bird",
                                "sun", "was", "happy", "girl", "named", "Lily", "park", "ball", "red"};
  std::string s = "Story " + std::to_string(index) + ":";
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(index + 1);
  for (int i = 0; i < words; ++i) {
    x ^= x >> 13, x *= 0xff51afd7ed558ccdull, x ^= x >> 29;
    s += " ";
    s += vocab[x % (sizeof vocab / sizeof vocab[0])];
  }
  return s;
}

RequestTiming one_request(httplib::Client& cli, const LoadOpts& o, const std::string& shared, int index) {
  RequestTiming t;
  const std::string prompt = shared.empty() ? prompt_for(index, o.prompt_words)
                                            : shared + " (request " + std::to_string(index) + ")";
  nlohmann::json body = {{"prompt", prompt}, {"max_tokens", o.max_tokens},
                         {"temperature", 0},  {"ignore_eos", true},
                         {"stream", true},    {"stream_options", {{"include_usage", true}}}};
  if (!o.model.empty()) body["model"] = o.model;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.headers = {{"Content-Type", "application/json"}};
  if (!o.api_key.empty()) req.headers.emplace("Authorization", "Bearer " + o.api_key);
  req.body = body.dump();
  const auto start = clock_type::now();
  clock_type::time_point last{};
  std::string buffer;
  int64_t chunks = 0, usage_tokens = -1;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    for (size_t end; (end = buffer.find("\n\n")) != std::string::npos; buffer.erase(0, end + 2)) {
      const std::string event = buffer.substr(0, end);
      if (event.rfind("data: ", 0) != 0) continue;
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") continue;
      const auto j = nlohmann::json::parse(payload, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("error")) {
        t.error = j["error"].value("message", "error");
        continue;
      }
      if (j.contains("usage") && j["usage"].is_object()) usage_tokens = j["usage"].value("completion_tokens", -1);
      if (!j.contains("choices") || j["choices"].empty()) continue;
      const auto now = clock_type::now();
      ++chunks;
      if (chunks == 1) t.ttft = std::chrono::duration<double>(now - start).count();
      else t.gaps.push_back(std::chrono::duration<double>(now - last).count());
      last = now;
    }
    return true;
  };
  const httplib::Result res = cli.send(req);
  if (!res) {
    t.error = "no answer: " + httplib::to_string(res.error());
    t.transport = chunks == 0;
  } else if (res->status != 200) {
    t.error = "HTTP " + std::to_string(res->status) + " " + res->body.substr(0, 200);
  }
  t.tokens = usage_tokens >= 0 ? usage_tokens : chunks;
  t.ok = t.error.empty() && chunks > 0;
  if (!t.ok && t.error.empty()) t.error = "no tokens";
  return t;
}

Round run_round(const LoadOpts& o, const std::string& shared, int concurrency) {
  Round r;
  r.concurrency = concurrency;
  r.requests = o.requests > 0 ? o.requests : 4 * concurrency;
  std::atomic<int> next{0};
  std::mutex m;
  std::vector<RequestTiming> all;
  const auto start = clock_type::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < concurrency; ++c)
    clients.emplace_back([&] {
      httplib::Client cli(o.url);
      cli.set_read_timeout(600);
      for (int i; (i = next++) < r.requests;) {
        // A connection refused or dropped before any answer is tried again (twice), as OpenAI's
        // clients do; the retries are counted.
        RequestTiming t = one_request(cli, o, shared, i);
        int retries = 0;
        for (; t.transport && retries < 2; ++retries) t = one_request(cli, o, shared, i);
        std::lock_guard lock(m);
        r.retries += retries;
        all.push_back(std::move(t));
      }
    });
  for (auto& t : clients) t.join();
  r.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  std::vector<double> ttft, gaps;
  for (const RequestTiming& t : all) {
    if (!t.ok) {
      ++r.errors;
      if (r.first_error.empty()) r.first_error = t.error;
      continue;
    }
    r.tokens += t.tokens;
    ttft.push_back(t.ttft);
    gaps.insert(gaps.end(), t.gaps.begin(), t.gaps.end());
  }
  r.ttft_p50 = percentile(ttft, 0.5);
  r.ttft_p99 = percentile(ttft, 0.99);
  r.itl_p50 = percentile(gaps, 0.5);
  r.itl_p99 = percentile(gaps, 0.99);
  return r;
}

}  // namespace

void add_bench_serve_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
      "serve", "Load a running OpenAI-compatible server: N streaming clients; throughput, TTFT, ITL p50/p99, errors");
  auto o = std::make_shared<LoadOpts>();
  cmd->add_option("--url", o->url, "The server (default http://127.0.0.1:8080)");
  cmd->add_option("--model", o->model, "The model name to send (default: none, the server's)");
  cmd->add_option("--api-key", o->api_key, "Bearer key, when the server wants one");
  cmd->add_option("--concurrency", o->concurrency, "Clients at once, one round each (default 1,8,32)")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--requests", o->requests, "Requests per round (default 4 x concurrency)")->check(CLI::Range(0, 1000000));
  cmd->add_option("--prompt-words", o->prompt_words, "Words in each prompt (default 64)")->check(CLI::Range(1, 100000));
  cmd->add_option("--prompt-file", o->prompt_file,
                  "Every prompt is this file's text then \" (request N)\": a shared prefix (prefix caching)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--max-tokens", o->max_tokens, "Tokens generated per request, end of sequence ignored (default 128)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-o,--output", o->output, "md | json")->check(CLI::IsMember({"md", "json"}));
  cmd->callback([o] {
    std::string shared;
    if (!o->prompt_file.empty()) {
      std::ifstream f(o->prompt_file, std::ios::binary);
      shared.assign(std::istreambuf_iterator<char>(f), {});
      while (!shared.empty() && (shared.back() == '\n' || shared.back() == ' ')) shared.pop_back();
    }
    std::vector<Round> rounds;
    for (int c : o->concurrency) {
      rounds.push_back(run_round(*o, shared, c));
      const Round& r = rounds.back();
      if (r.errors) spdlog::warn("concurrency {}: {} of {} requests failed; the first: {}", c, r.errors, r.requests, r.first_error);
    }
    if (o->output == "json") {
      nlohmann::json j = nlohmann::json::array();
      for (const Round& r : rounds)
        j.push_back({{"concurrency", r.concurrency}, {"requests", r.requests}, {"errors", r.errors},
                     {"retries", r.retries}, {"tokens", r.tokens},
                     {"seconds", r.seconds}, {"throughput_tps", r.seconds > 0 ? r.tokens / r.seconds : 0},
                     {"decode_tps", r.itl_p50 > 0 ? r.concurrency / r.itl_p50 : 0},
                     {"ttft_p50_ms", r.ttft_p50 * 1e3}, {"ttft_p99_ms", r.ttft_p99 * 1e3},
                     {"itl_p50_ms", r.itl_p50 * 1e3}, {"itl_p99_ms", r.itl_p99 * 1e3}});
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("| concurrency | requests | errors | retries | tokens | seconds | throughput t/s | decode t/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const Round& r : rounds)
      std::printf("| %d | %d | %d | %d | %lld | %.2f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |\n", r.concurrency,
                  r.requests, r.errors, r.retries,
                  static_cast<long long>(r.tokens), r.seconds, r.seconds > 0 ? r.tokens / r.seconds : 0.0,
                  r.itl_p50 > 0 ? r.concurrency / r.itl_p50 : 0.0,
                  r.ttft_p50 * 1e3, r.ttft_p99 * 1e3, r.itl_p50 * 1e3, r.itl_p99 * 1e3);
  });
}

}  // namespace semline::app
