// `semline serve`: an OpenAI-compatible HTTP server (cpp-httplib) over one engine per variant of
// the line.
//
//   POST /v1/completions, POST /v1/chat/completions   OpenAI's fields and answers, streamed as
//                                                      server-sent events when asked
//   GET /v1/models, GET /health, GET /metrics         the model, liveness, Prometheus meters
//   POST /tokenize, POST /detokenize                  {"content"} <-> {"tokens"}
//
// Each variant (a config of the same model: live A/B) runs its engine on a thread of its own;
// HTTP threads submit requests and wait for their updates. A request goes to the variant its
// X-Semline-Variant header names, else to one drawn by the variants' shares. Bad requests get
// 400/401/404/413 in OpenAI's error shape; a full queue 503 with Retry-After; a client that goes
// away mid-stream has its request cancelled and its blocks freed. stop() stops accepting, cancels
// what runs and returns from run().
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/engine/engine.h"

namespace semline::serve {

struct ServeVariant {
  std::string name = "default";
  Pipeline* line = nullptr;
  double share = 1;     // of the requests that name no variant
  EngineOptions engine;  // runtime.max_seqs and [speculative]
};

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (see Server::port)
  std::string api_key;             // when set, /v1 and the tokenizer routes need "Authorization: Bearer KEY"
  std::string chat_template;       // a family name; empty: the model's tokenizer.chat_template, else plain
  std::string model_id;            // the name clients use; empty: the model file's stem
  int32_t max_queue = 64;          // requests waiting beyond the running ones before 503
  size_t max_body_bytes = 8u << 20;
  std::string model_chat_template; // the model's tokenizer.chat_template text (Jinja), if any
};

class Server {
 public:
  Server(std::vector<ServeVariant> variants, ServeOptions opt);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket (throws semline::Error saying why not); port() is then the real port.
  void bind();
  int port() const;
  // Serves until stop(); then cancels what still runs and joins the engines.
  void run();
  // Thread-safe: stops accepting and makes run() return.
  void stop();

  const std::string& model_id() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semline::serve
