// The OpenAI-compatible API's requests: a JSON body checked field by field into what the engine
// takes, and errors in OpenAI's shape. Request fields are OpenAI's (model, prompt or messages,
// max_tokens / max_completion_tokens, temperature, top_p, n, stream, stream_options, stop, seed,
// presence_penalty, frequency_penalty, logit_bias, logprobs / top_logprobs) with the usual extras
// (top_k, min_p, repetition_penalty, ignore_eos); null is the same as absent, unknown fields are
// ignored (clients send some of their own), and every bad value is one 400 naming its field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/engine/engine.h"

namespace semline::serve {

// An error answered as {"error": {"message", "type", "param", "code"}} with an HTTP status.
struct ApiError : Error {
  ApiError(int status, const std::string& message, std::string type = "invalid_request_error", std::string param = {},
           std::string code = {});
  int status;
  std::string type, param, code;
  nlohmann::json body() const;
};

struct ChatMessage {
  std::string role;  // system, developer, user, assistant, tool
  std::string content;
};

// One prompt of a completion request: text, or token ids.
struct PromptInput {
  std::string text;
  std::vector<int32_t> ids;
  bool is_ids = false;
};

struct ApiRequest {
  bool chat = false;
  std::string model;                  // as the client named it; empty when absent
  std::vector<PromptInput> prompts;   // /v1/completions: one or more (a batch)
  std::vector<ChatMessage> messages;  // /v1/chat/completions
  RequestOptions options;             // all but the prompt; options.max_tokens < 0: up to the context
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
};

// A request body as a JSON object. Throws ApiError (400) naming what is wrong.
nlohmann::json parse_object(std::string_view body);

// Checks a body for /v1/completions (chat = false) or /v1/chat/completions. Throws ApiError.
ApiRequest parse_request(std::string_view body, bool chat);

// JSON text that never throws on invalid UTF-8 (a token's bytes may be part of a character).
std::string dump(const nlohmann::json& j);

}  // namespace semline::serve
