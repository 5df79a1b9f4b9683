// The OpenAI-compatible API's answers: completion and chat objects, their streamed chunks, usage
// and log-probabilities, from what the engine reported for each choice.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/engine/engine.h"

namespace semline::serve {

// One choice as the server collected it.
struct ChoiceResult {
  std::string text;
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> logprobs;
  FinishReason finish = FinishReason::None;
  ChoiceStats stats;
};

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  nlohmann::json json() const;
};

// "stop" (end of sequence, stop string or token), "length", "abort" (cancelled).
const char* finish_reason_text(FinishReason r);

// The log-probabilities of some tokens: OpenAI's legacy completion form ({tokens,
// token_logprobs, top_logprobs, text_offset}, offsets from `offset`) or the chat form ({content:
// [{token, logprob, bytes, top_logprobs}]}).
nlohmann::json completion_logprobs(const std::vector<TokenLogprob>& lps, const Tokenizer& tok, size_t offset);
nlohmann::json chat_logprobs(const std::vector<TokenLogprob>& lps, const Tokenizer& tok);

// The whole answer of a request that did not stream.
nlohmann::json completion_response(const std::string& id, int64_t created, const std::string& model, bool chat,
                                   const std::vector<ChoiceResult>& choices, bool with_logprobs, const Usage& usage,
                                   const Tokenizer& tok);

// One streamed chunk for choice `index`: new text (and its tokens' log-probabilities), and the
// finish reason on the last. A chat's first chunk of a choice carries the assistant role.
nlohmann::json stream_chunk(const std::string& id, int64_t created, const std::string& model, bool chat, int32_t index,
                            const std::string& text, const nlohmann::json& logprobs, FinishReason finish, bool first);
// The last chunk when usage was asked for: no choices, the usage.
nlohmann::json usage_chunk(const std::string& id, int64_t created, const std::string& model, bool chat,
                           const Usage& usage);

}  // namespace semline::serve
