#include "core/serve/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/engine/engine.h"
#include "core/serve/api.h"
#include "core/serve/chat_template.h"
#include "core/serve/metrics.h"
#include "core/serve/responses.h"
#include "core/util/text.h"

namespace semline::serve {

using nlohmann::json;

namespace {

// What one choice's update carried, copied off the engine's thread.
struct Piece {
  int32_t index = 0;
  std::string text;
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> logprobs;
  FinishReason finish = FinishReason::None;
  std::string error;
  ChoiceStats stats;
};

// One HTTP request's exchange with an engine: the pieces its choices produced, in order.
struct Call {
  std::mutex m;
  std::condition_variable cv;
  std::deque<Piece> pieces;
  int32_t open = 0;                  // choices not finished
  std::vector<uint64_t> ids;         // the engine's requests (one per prompt)
  std::vector<Clock::time_point> last_token;  // per choice, for the inter-token latency
};

// httplib's server with its listening socket in reach: httplib listens with a backlog of 5, and
// 32 clients connecting at once while the engine keeps both cores busy overflow it (the kernel
// then drops a connection the client thinks is open: its request gets no answer).
class HttpServer : public httplib::Server {
 public:
  void deepen_backlog(int backlog) { ::listen(svr_sock_, backlog); }
};

}  // namespace

// One variant of the line with its engine and the thread that steps it.
struct Lane {
  std::string name;
  Pipeline* line = nullptr;
  double share = 1;
  int32_t max_seqs = 16;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ChatTemplate> chat;
  std::thread thread;
  std::mutex m;
  std::condition_variable cv;
  bool pending = false, stopping = false;
  std::set<std::shared_ptr<Call>> calls;  // in flight, under m
};

struct Server::Impl {
  ServeOptions opt;
  std::vector<std::unique_ptr<Lane>> lanes;
  HttpServer http;
  Metrics metrics;
  int port = -1;
  int64_t started = std::time(nullptr);
  std::atomic<uint64_t> next_id{1};
  std::mutex pick_mutex;
  std::mt19937_64 pick_rng{std::random_device{}()};

  void loop(Lane& l);
  Lane& pick(const httplib::Request& req);
  void answer_error(httplib::Response& res, const ApiError& e, const std::string& variant);
  bool authorised(const httplib::Request& req, httplib::Response& res);
  void generate(const httplib::Request& req, httplib::Response& res, bool chat);
  std::vector<std::vector<int32_t>> prompt_ids(Lane& l, const ApiRequest& r);
  void routes();
};

void Server::Impl::loop(Lane& l) {
  for (;;) {
    {
      std::unique_lock lock(l.m);
      l.cv.wait(lock, [&] { return l.pending || l.stopping; });
      l.pending = false;
      if (l.stopping && !l.engine->busy()) return;
    }
    while (l.engine->step()) metrics.engine(l.name, l.engine->counters());
    metrics.engine(l.name, l.engine->counters());
  }
}

Lane& Server::Impl::pick(const httplib::Request& req) {
  const std::string named = req.get_header_value("X-Semline-Variant");
  if (!named.empty()) {
    std::vector<std::string> names;
    for (auto& l : lanes) {
      if (l->name == named) return *l;
      names.push_back(l->name);
    }
    throw ApiError(400, "X-Semline-Variant names no variant '" + named + "'" + did_you_mean(named, names) +
                            "; variants: " + join(names));
  }
  double total = 0;
  for (auto& l : lanes) total += l->share;
  std::lock_guard lock(pick_mutex);
  double x = std::uniform_real_distribution<double>(0, total)(pick_rng);
  for (auto& l : lanes) {
    if (x < l->share) return *l;
    x -= l->share;
  }
  return *lanes.back();
}

void Server::Impl::answer_error(httplib::Response& res, const ApiError& e, const std::string& variant) {
  metrics.error(variant, e.status);
  res.status = e.status;
  if (e.status == 503 || e.status == 429) res.set_header("Retry-After", "1");
  res.set_content(dump(e.body()), "application/json");
}

bool Server::Impl::authorised(const httplib::Request& req, httplib::Response& res) {
  if (opt.api_key.empty() || req.get_header_value("Authorization") == "Bearer " + opt.api_key) return true;
  answer_error(res,
               ApiError(401, req.has_header("Authorization") ? "the API key is not valid"
                                                              : "an API key is needed: Authorization: Bearer <key>",
                        "authentication_error", {}, "invalid_api_key"),
               "default");
  return false;
}

std::vector<std::vector<int32_t>> Server::Impl::prompt_ids(Lane& l, const ApiRequest& r) {
  const Tokenizer& tok = l.line->tokenizer();
  if (r.chat) return {l.chat->tokenize(r.messages)};
  std::vector<std::vector<int32_t>> out;
  // Control tokens written in a prompt are read as such, as llama-server and vLLM read them.
  for (const PromptInput& p : r.prompts) out.push_back(p.is_ids ? p.ids : tok.encode(p.text, true, true));
  return out;
}

void Server::Impl::generate(const httplib::Request& req, httplib::Response& res, bool chat) {
  if (!authorised(req, res)) return;
  Lane* lane = nullptr;
  try {
    lane = &pick(req);
    ApiRequest r = parse_request(req.body, chat);
    if (!r.model.empty() && r.model != opt.model_id)
      throw ApiError(404, "the model '" + r.model + "' does not exist; this server serves '" + opt.model_id + "'",
                     "invalid_request_error", "model", "model_not_found");
    auto call = std::make_shared<Call>();
    {
      std::lock_guard lock(lane->m);
      if (static_cast<int64_t>(lane->calls.size()) >= lane->max_seqs + opt.max_queue)
        throw ApiError(503, "the server is busy: " + std::to_string(lane->calls.size()) +
                                " requests are running or waiting; retry shortly",
                       "server_error", {}, "queue_full");
      lane->calls.insert(call);
    }
    struct Unregister {
      Lane* lane = nullptr;
      std::shared_ptr<Call> call;
      bool armed = true;
      ~Unregister() {
        if (!armed) return;
        for (uint64_t id : call->ids) lane->engine->cancel(id);
        std::lock_guard lock(lane->m);
        lane->calls.erase(call);
        lane->pending = true;
        lane->cv.notify_one();
      }
    };
    auto unregister = std::make_shared<Unregister>();
    unregister->lane = lane;
    unregister->call = call;

    const std::vector<std::vector<int32_t>> prompts = prompt_ids(*lane, r);
    const int32_t context = lane->line->kv().options().context;
    for (const auto& p : prompts) {
      const int64_t asked = static_cast<int64_t>(p.size()) + std::max(r.options.max_tokens, 0);
      if (r.options.max_tokens > 0 && asked > context)
        throw ApiError(400, "this model's context holds " + std::to_string(context) + " tokens, and " +
                                std::to_string(asked) + " were asked for (" + std::to_string(p.size()) +
                                " in the prompt, " + std::to_string(r.options.max_tokens) + " to generate)",
                       "invalid_request_error", chat ? "max_completion_tokens" : "max_tokens");
    }
    const int32_t n = r.options.n;
    const size_t total = static_cast<size_t>(n) * prompts.size();  // choices in all
    call->open = static_cast<int32_t>(total);
    call->last_token.assign(total, Clock::time_point{});
    const std::string variant = lane->name;
    for (size_t pi = 0; pi < prompts.size(); ++pi) {
      RequestOptions o = r.options;
      o.prompt = prompts[pi];
      if (chat) o.stop_tokens = lane->chat->end_of_turn();
      const int32_t base = static_cast<int32_t>(pi) * n;
      try {
        call->ids.push_back(lane->engine->submit(std::move(o), [this, call, base, variant](const Update& u) {
          Piece p;
          p.index = base + u.index;
          p.text = u.text;
          p.tokens = u.tokens;
          p.logprobs = u.logprobs;
          p.finish = u.finish;
          p.error = u.error;
          const auto now = Clock::now();
          if (!u.tokens.empty()) {
            Clock::time_point& last = call->last_token[static_cast<size_t>(p.index)];
            if (last != Clock::time_point{})
              metrics.inter_token(variant, std::chrono::duration<double>(now - last).count(), u.tokens.size());
            last = now;
          }
          if (u.stats) {
            p.stats = *u.stats;
            if (u.finish != FinishReason::Error) metrics.choice_finished(variant, p.stats, finish_reason_text(u.finish));
          }
          std::lock_guard lock(call->m);
          if (p.finish != FinishReason::None) --call->open;
          call->pieces.push_back(std::move(p));
          call->cv.notify_all();
        }));
      } catch (const ApiError&) {
        throw;
      } catch (const Error& e) {
        throw ApiError(400, e.what(), "invalid_request_error", chat ? "messages" : "prompt");
      }
    }
    {
      std::lock_guard lock(lane->m);
      lane->pending = true;
    }
    lane->cv.notify_one();

    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(started) + "-" + std::to_string(next_id++);
    const bool with_logprobs = r.options.logprobs >= 0;
    const Tokenizer& tok = lane->line->tokenizer();
    Usage usage;
    for (const auto& p : prompts) usage.prompt_tokens += static_cast<int64_t>(p.size());
    res.set_header("X-Semline-Variant", lane->name);

    if (!r.stream) {
      std::vector<ChoiceResult> results(total);
      std::string error;
      {
        std::unique_lock lock(call->m);
        call->cv.wait(lock, [&] { return call->open == 0; });
        for (Piece& p : call->pieces) {
          ChoiceResult& c = results[static_cast<size_t>(p.index)];
          c.text += p.text;
          c.tokens.insert(c.tokens.end(), p.tokens.begin(), p.tokens.end());
          c.logprobs.insert(c.logprobs.end(), p.logprobs.begin(), p.logprobs.end());
          if (p.finish != FinishReason::None) {
            c.finish = p.finish;
            c.stats = p.stats;
            if (p.finish == FinishReason::Error) error = p.error;
          }
        }
      }
      if (!error.empty()) throw ApiError(500, error, "server_error");
      for (size_t i = 0; i < results.size(); ++i) {
        usage.completion_tokens += results[i].stats.n_generated;
        if (i % static_cast<size_t>(n) == 0) usage.cached_tokens += results[i].stats.n_cached;
      }
      res.set_content(dump(completion_response(id, std::time(nullptr), opt.model_id, chat, results, with_logprobs, usage, tok)),
                      "application/json");
      return;
    }

    // Streaming: the provider hands over what arrived, chunk by chunk, until every choice ended.
    struct StreamState {
      std::vector<bool> started;
      std::vector<size_t> offsets;
      Usage usage;
      bool finished = false;
    };
    auto state = std::make_shared<StreamState>();
    state->started.assign(total, false);
    state->offsets.assign(total, 0);
    state->usage = usage;
    unregister->armed = false;  // the releaser below takes over
    const bool include_usage = r.include_usage;
    const int64_t created = std::time(nullptr);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, call, state, id, chat, with_logprobs, include_usage, created, &tok, n](size_t, httplib::DataSink& sink) {
          std::deque<Piece> got;
          bool all_done;
          {
            std::unique_lock lock(call->m);
            call->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return !call->pieces.empty() || call->open == 0; });
            got.swap(call->pieces);
            all_done = call->open == 0;
          }
          auto send = [&](const json& j) {
            const std::string line = "data: " + dump(j) + "\n\n";
            return sink.write(line.data(), line.size());
          };
          for (Piece& p : got) {
            const size_t i = static_cast<size_t>(p.index);
            if (p.finish == FinishReason::Error) {
              send(ApiError(500, p.error, "server_error").body());
              continue;
            }
            if (p.finish != FinishReason::None) {
              state->usage.completion_tokens += p.stats.n_generated;
              if (i % static_cast<size_t>(n) == 0) state->usage.cached_tokens += p.stats.n_cached;
            }
            json lp = nullptr;
            if (with_logprobs && !p.logprobs.empty())
              lp = chat ? chat_logprobs(p.logprobs, tok) : completion_logprobs(p.logprobs, tok, state->offsets[i]);
            state->offsets[i] += p.text.size();
            if (!send(stream_chunk(id, created, opt.model_id, chat, p.index, p.text, lp, p.finish, !state->started[i])))
              return false;
            state->started[i] = true;
          }
          if (all_done) {
            if (include_usage && !send(usage_chunk(id, created, opt.model_id, chat, state->usage))) return false;
            const std::string done = "data: [DONE]\n\n";
            if (!sink.write(done.data(), done.size())) return false;
            state->finished = true;
            sink.done();
            return true;
          }
          return sink.is_writable();
        },
        [call, lane, state](bool) {
          // The stream ended, or the client went away: a request still running is cancelled.
          if (!state->finished)
            for (uint64_t rid : call->ids) lane->engine->cancel(rid);
          std::lock_guard lock(lane->m);
          lane->calls.erase(call);
          lane->pending = true;
          lane->cv.notify_one();
        });
  } catch (const ApiError& e) {
    answer_error(res, e, lane ? lane->name : "default");
  }
}

void Server::Impl::routes() {
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.text(), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorised(req, res)) return;
    json data = json::array({{{"id", opt.model_id}, {"object", "model"}, {"created", started}, {"owned_by", "semline"}}});
    res.set_content(dump(json{{"object", "list"}, {"data", data}}), "application/json");
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, false); });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, true); });
  http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorised(req, res)) return;
    try {
      json body = parse_object(req.body);
      const json* text = body.contains("content") ? &body["content"] : body.contains("prompt") ? &body["prompt"] : nullptr;
      if (!text || !text->is_string()) throw ApiError(400, "'content' must be a string", "invalid_request_error", "content");
      // As llama-server's: add_special (the BOS) defaults to false, parse_special to true.
      auto flag = [&](const char* name, bool dflt) {
        if (!body.contains(name)) return dflt;
        if (!body[name].is_boolean())
          throw ApiError(400, std::string("'") + name + "' must be a boolean", "invalid_request_error", name);
        return body[name].get<bool>();
      };
      const bool add_special = flag("add_special", false), parse_special = flag("parse_special", true);
      const auto ids = lanes.front()->line->tokenizer().encode(text->get<std::string>(), add_special, parse_special);
      res.set_content(dump(json{{"tokens", ids}}), "application/json");
    } catch (const ApiError& e) {
      answer_error(res, e, "default");
    }
  });
  http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorised(req, res)) return;
    try {
      json body = parse_object(req.body);
      if (!body.contains("tokens") || !body["tokens"].is_array())
        throw ApiError(400, "'tokens' must be an array of token ids", "invalid_request_error", "tokens");
      const Tokenizer& tok = lanes.front()->line->tokenizer();
      std::vector<int32_t> ids;
      for (const json& t : body["tokens"]) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.n_vocab())
          throw ApiError(400, "'tokens' holds " + t.dump() + ", not a token id in 0.." + std::to_string(tok.n_vocab() - 1),
                         "invalid_request_error", "tokens");
        ids.push_back(t.get<int32_t>());
      }
      std::string text;
      for (int32_t t : ids) text += tok.token_bytes(t);
      res.set_content(dump(json{{"content", text}}), "application/json");
    } catch (const ApiError& e) {
      answer_error(res, e, "default");
    }
  });
  // Whatever no route answered (an unknown path, a body past the limit) in OpenAI's shape.
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "no route " + req.method + " " + req.path;
    if (res.status == 413) message = "the request body is larger than " + std::to_string(opt.max_body_bytes) + " bytes";
    const json body = ApiError(res.status, message, res.status == 413 ? "invalid_request_error" : "not_found_error").body();
    res.set_content(dump(body), "application/json");
  });
  http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("request failed: {}", what);
    answer_error(res, ApiError(500, what, "server_error"), "default");
  });
}

Server::Server(std::vector<ServeVariant> variants, ServeOptions opt) : impl_(std::make_unique<Impl>()) {
  if (variants.empty()) throw Error("serve: no variant of the line to serve");
  impl_->opt = std::move(opt);
  Impl& s = *impl_;
  const ChatFamily family = choose_chat_family(s.opt.chat_template, s.opt.model_chat_template);
  int32_t threads = 8;
  for (ServeVariant& v : variants) {
    auto lane = std::make_unique<Lane>();
    lane->name = v.name;
    lane->line = v.line;
    lane->share = v.share;
    lane->max_seqs = v.engine.max_seqs;
    lane->engine = std::make_unique<Engine>(*v.line, v.engine);
    lane->chat = std::make_unique<ChatTemplate>(family, v.line->tokenizer());
    threads += v.engine.max_seqs + s.opt.max_queue;
    s.lanes.push_back(std::move(lane));
  }
  spdlog::info("chat template: {}", chat_family_name(family));
  // Every running or waiting request holds an HTTP thread while it streams; a few more answer
  // the rest (health, metrics, refusals).
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.http.set_payload_max_length(s.opt.max_body_bytes);
  // The keep-alive timeout is also how long a new connection may take to send its request: under
  // load a client may be seconds late, so it stays at httplib's 5 s (stop() waits that long for
  // idle connections).
  s.routes();
}

Server::~Server() {
  stop();
  for (auto& l : impl_->lanes) {
    {
      std::lock_guard lock(l->m);
      l->stopping = true;
    }
    l->cv.notify_one();
    if (l->thread.joinable()) l->thread.join();
  }
}

void Server::bind() {
  Impl& s = *impl_;
  s.port = s.opt.port == 0 ? s.http.bind_to_any_port(s.opt.host) : (s.http.bind_to_port(s.opt.host, s.opt.port) ? s.opt.port : -1);
  if (s.port < 0)
    throw Error("serve: cannot listen on " + s.opt.host + ":" + std::to_string(s.opt.port) +
                " (in use, or not an address of this machine)");
  s.http.deepen_backlog(1024);
}

int Server::port() const { return impl_->port; }

const std::string& Server::model_id() const { return impl_->opt.model_id; }

void Server::run() {
  Impl& s = *impl_;
  if (s.port < 0) bind();
  for (auto& l : s.lanes) l->thread = std::thread([&s, lane = l.get()] { s.loop(*lane); });
  s.http.listen_after_bind();
  // Stopped: what still runs is cancelled, and the engines finish.
  for (auto& l : s.lanes) {
    {
      std::lock_guard lock(l->m);
      for (const auto& call : l->calls)
        for (uint64_t id : call->ids) l->engine->cancel(id);
      l->stopping = true;
    }
    l->cv.notify_one();
    if (l->thread.joinable()) l->thread.join();
  }
}

void Server::stop() { impl_->http.stop(); }

}  // namespace semline::serve
