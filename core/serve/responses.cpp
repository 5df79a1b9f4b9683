#include "core/serve/responses.h"

namespace semline::serve {

using nlohmann::json;

json Usage::json() const {
  return nlohmann::json{{"prompt_tokens", prompt_tokens},
                        {"completion_tokens", completion_tokens},
                        {"total_tokens", prompt_tokens + completion_tokens},
                        {"prompt_tokens_details", {{"cached_tokens", cached_tokens}}}};
}

const char* finish_reason_text(FinishReason r) {
  switch (r) {
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled:
    case FinishReason::Error: return "abort";
    default: return "stop";
  }
}

namespace {

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

}  // namespace

json completion_logprobs(const std::vector<TokenLogprob>& lps, const Tokenizer& tok, size_t offset) {
  json tokens = json::array(), values = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenLogprob& lp : lps) {
    const std::string text = tok.token_bytes(lp.token);
    tokens.push_back(text);
    values.push_back(lp.logprob);
    json top = json::object();
    for (const auto& [id, v] : lp.top) top[tok.token_bytes(id)] = v;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += text.size();
  }
  return json{{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json chat_logprobs(const std::vector<TokenLogprob>& lps, const Tokenizer& tok) {
  json content = json::array();
  for (const TokenLogprob& lp : lps) {
    const std::string text = tok.token_bytes(lp.token);
    json top = json::array();
    for (const auto& [id, v] : lp.top) {
      const std::string t = tok.token_bytes(id);
      top.push_back({{"token", t}, {"logprob", v}, {"bytes", bytes_of(t)}});
    }
    content.push_back({{"token", text}, {"logprob", lp.logprob}, {"bytes", bytes_of(text)}, {"top_logprobs", top}});
  }
  return json{{"content", content}};
}

json completion_response(const std::string& id, int64_t created, const std::string& model, bool chat,
                         const std::vector<ChoiceResult>& choices, bool with_logprobs, const Usage& usage,
                         const Tokenizer& tok) {
  json out = {{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created},
              {"model", model}, {"choices", json::array()}, {"usage", usage.json()}};
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    json choice = {{"index", i}, {"finish_reason", finish_reason_text(c.finish)}, {"logprobs", nullptr}};
    if (with_logprobs) choice["logprobs"] = chat ? chat_logprobs(c.logprobs, tok) : completion_logprobs(c.logprobs, tok, 0);
    if (chat) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    else choice["text"] = c.text;
    out["choices"].push_back(std::move(choice));
  }
  return out;
}

json stream_chunk(const std::string& id, int64_t created, const std::string& model, bool chat, int32_t index,
                  const std::string& text, const json& logprobs, FinishReason finish, bool first) {
  json choice = {{"index", index}, {"logprobs", logprobs},
                 {"finish_reason", finish == FinishReason::None ? json(nullptr) : json(finish_reason_text(finish))}};
  if (chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && finish == FinishReason::None)) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  return {{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
          {"model", model}, {"choices", json::array({choice})}};
}

json usage_chunk(const std::string& id, int64_t created, const std::string& model, bool chat, const Usage& usage) {
  return {{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
          {"model", model}, {"choices", json::array()}, {"usage", usage.json()}};
}

}  // namespace semline::serve
