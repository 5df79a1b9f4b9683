#include "core/serve/api.h"

#include <cmath>
#include <limits>

namespace semline::serve {

using nlohmann::json;

ApiError::ApiError(int s, const std::string& message, std::string t, std::string p, std::string c)
    : Error(message), status(s), type(std::move(t)), param(std::move(p)), code(std::move(c)) {}

json ApiError::body() const {
  json e = {{"message", what()}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  return json{{"error", e}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

const char* kind_of(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "something else";
  }
}

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw ApiError(400, "'" + param + "' " + message, "invalid_request_error", param);
}

// The field, or null when absent or null.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) bad(param, std::string("must be a number, got ") + kind_of(v));
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi)
    bad(param, "must be between " + json(lo).dump() + " and " + json(hi).dump() + ", got " + v.dump());
  return d;
}

int64_t integer(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) bad(param, std::string("must be an integer, got ") + kind_of(v));
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    bad(param, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + v.dump());
  const int64_t i = v.get<int64_t>();
  if (i < lo || i > hi) bad(param, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + v.dump());
  return i;
}

bool boolean(const json& v, const std::string& param) {
  if (!v.is_boolean()) bad(param, std::string("must be a boolean, got ") + kind_of(v));
  return v.get<bool>();
}

std::string string(const json& v, const std::string& param) {
  if (!v.is_string()) bad(param, std::string("must be a string, got ") + kind_of(v));
  return v.get<std::string>();
}

std::vector<int32_t> token_ids(const json& a, const std::string& param) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < a.size(); ++i)
    ids.push_back(static_cast<int32_t>(integer(a[i], param + "[" + std::to_string(i) + "]", 0, INT32_MAX)));
  return ids;
}

// prompt: a string, an array of strings, an array of token ids, or an array of arrays of ids.
std::vector<PromptInput> prompts(const json& p) {
  std::vector<PromptInput> out;
  if (p.is_string()) return {PromptInput{p.get<std::string>(), {}, false}};
  if (!p.is_array()) bad("prompt", std::string("must be a string, an array of strings or an array of token ids, got ") + kind_of(p));
  if (p.empty()) bad("prompt", "is empty");
  if (p[0].is_number()) return {PromptInput{{}, token_ids(p, "prompt"), true}};
  for (size_t i = 0; i < p.size(); ++i) {
    const std::string param = "prompt[" + std::to_string(i) + "]";
    if (p[i].is_string()) out.push_back(PromptInput{p[i].get<std::string>(), {}, false});
    else if (p[i].is_array() && !p[i].empty()) out.push_back(PromptInput{{}, token_ids(p[i], param), true});
    else bad(param, std::string("must be a string or a non-empty array of token ids, got ") + kind_of(p[i]));
  }
  return out;
}

// content: a string, or an array of parts of which the text ones count.
std::string content_of(const json& c, const std::string& param) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) bad(param, std::string("must be a string or an array of content parts, got ") + kind_of(c));
  std::string text;
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    if (!c[i].is_object()) bad(p, std::string("must be a content part object, got ") + kind_of(c[i]));
    const json* type = field(c[i], "type");
    if (!type || string(*type, p + ".type") != "text")
      bad(p + ".type", "must be \"text\": this model reads text only");
    const json* t = field(c[i], "text");
    if (!t) bad(p + ".text", "is missing");
    text += string(*t, p + ".text");
  }
  return text;
}

std::vector<ChatMessage> messages(const json& m) {
  if (!m.is_array()) bad("messages", std::string("must be an array of messages, got ") + kind_of(m));
  if (m.empty()) bad("messages", "is empty: a chat needs at least one message");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < m.size(); ++i) {
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m[i].is_object()) bad(p, std::string("must be an object with role and content, got ") + kind_of(m[i]));
    const json* role = field(m[i], "role");
    if (!role) bad(p + ".role", "is missing");
    const std::string r = string(*role, p + ".role");
    if (r != "system" && r != "developer" && r != "user" && r != "assistant" && r != "tool")
      bad(p + ".role", "must be one of system, developer, user, assistant, tool; got \"" + r + "\"");
    const json* content = field(m[i], "content");
    out.push_back(ChatMessage{r == "developer" ? "system" : r, content ? content_of(*content, p + ".content") : ""});
  }
  return out;
}

}  // namespace

json parse_object(std::string_view text) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {
    // parse_error for bad syntax, out_of_range for a number beyond a double (1e1111).
    throw ApiError(400, std::string("the body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) throw ApiError(400, std::string("the body must be a JSON object, got ") + kind_of(body));
  return body;
}

ApiRequest parse_request(std::string_view text, bool chat) {
  const json body = parse_object(text);

  ApiRequest r;
  r.chat = chat;
  RequestOptions& o = r.options;
  SamplingParams& s = o.sampling;
  if (const json* v = field(body, "model")) r.model = string(*v, "model");
  if (chat) {
    const json* m = field(body, "messages");
    if (!m) bad("messages", "is missing");
    r.messages = messages(*m);
  } else {
    const json* p = field(body, "prompt");
    if (!p) bad("prompt", "is missing");
    r.prompts = prompts(*p);
    for (const PromptInput& in : r.prompts)
      if (!in.is_ids && in.text.empty()) bad("prompt", "is empty: nothing to continue from");
  }
  // OpenAI's defaults: 16 tokens for a completion; a chat answer runs to its end or the context.
  o.max_tokens = chat ? -1 : 16;
  for (const char* name : {"max_tokens", "max_completion_tokens"})
    if (const json* v = field(body, name)) o.max_tokens = static_cast<int32_t>(integer(*v, name, 1, 1 << 24));
  if (const json* v = field(body, "temperature")) s.temperature = number(*v, "temperature", 0, 2);
  if (const json* v = field(body, "top_p")) s.top_p = number(*v, "top_p", 0, 1);
  if (const json* v = field(body, "min_p")) s.min_p = number(*v, "min_p", 0, 1);
  if (const json* v = field(body, "top_k")) {
    const int64_t k = integer(*v, "top_k", -1, 1 << 24);
    s.top_k = k < 0 ? 0 : k;  // -1 (vLLM's "off") is 0 here
  }
  if (const json* v = field(body, "presence_penalty")) s.presence_penalty = number(*v, "presence_penalty", -2, 2);
  if (const json* v = field(body, "frequency_penalty")) s.frequency_penalty = number(*v, "frequency_penalty", -2, 2);
  if (const json* v = field(body, "repetition_penalty")) s.repeat_penalty = number(*v, "repetition_penalty", 0.01, 100);
  if (const json* v = field(body, "seed")) s.seed = integer(*v, "seed", 0, INT64_MAX / 2);
  if (const json* v = field(body, "n")) o.n = static_cast<int32_t>(integer(*v, "n", 1, 128));
  if (const json* v = field(body, "ignore_eos")) o.ignore_eos = boolean(*v, "ignore_eos");
  if (const json* v = field(body, "stream")) r.stream = boolean(*v, "stream");
  if (const json* v = field(body, "stream_options")) {
    if (!v->is_object()) bad("stream_options", std::string("must be an object, got ") + kind_of(*v));
    if (const json* u = field(*v, "include_usage")) r.include_usage = boolean(*u, "stream_options.include_usage");
  }
  if (const json* v = field(body, "stop")) {
    if (v->is_string()) {
      o.stop = {v->get<std::string>()};
    } else if (v->is_array()) {
      if (v->size() > 16) bad("stop", "holds " + std::to_string(v->size()) + " strings; at most 16");
      for (size_t i = 0; i < v->size(); ++i) o.stop.push_back(string((*v)[i], "stop[" + std::to_string(i) + "]"));
    } else {
      bad("stop", std::string("must be a string or an array of strings, got ") + kind_of(*v));
    }
    for (const std::string& st : o.stop)
      if (st.empty()) bad("stop", "holds an empty string");
  }
  if (const json* v = field(body, "logit_bias")) {
    if (!v->is_object()) bad("logit_bias", std::string("must be an object of token id -> bias, got ") + kind_of(*v));
    for (const auto& [key, bias] : v->items()) {
      const std::string p = "logit_bias." + key;
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(key, &used);
        if (used != key.size()) id = -1;
      } catch (const std::exception&) {
      }
      if (id < 0 || id > INT32_MAX) bad(p, "names no token: keys are token ids written as strings, e.g. \"50256\"");
      s.logit_bias.emplace_back(static_cast<int32_t>(id), number(bias, p, -100, 100));
    }
  }
  if (chat) {
    bool want = false;
    if (const json* v = field(body, "logprobs")) want = boolean(*v, "logprobs");
    int32_t top = 0;
    if (const json* v = field(body, "top_logprobs")) {
      top = static_cast<int32_t>(integer(*v, "top_logprobs", 0, 20));
      if (!want) bad("top_logprobs", "needs logprobs: true");
    }
    o.logprobs = want ? top : -1;
  } else if (const json* v = field(body, "logprobs")) {
    o.logprobs = static_cast<int32_t>(integer(*v, "logprobs", 0, 20));
  }
  if (const json* v = field(body, "echo"); v && boolean(*v, "echo")) bad("echo", "is not supported");
  if (field(body, "suffix")) bad("suffix", "is not supported");
  if (const json* v = field(body, "best_of"); v && integer(*v, "best_of", 1, 128) != o.n)
    bad("best_of", "is not supported other than equal to n");
  if (const json* v = field(body, "tools"); v && !v->empty()) bad("tools", "are not supported");
  return r;
}

}  // namespace semline::serve
