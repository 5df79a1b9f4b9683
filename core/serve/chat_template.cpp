#include "core/serve/chat_template.h"

#include <algorithm>

#include "core/util/text.h"

namespace semline::serve {
namespace {

struct FamilyInfo {
  ChatFamily family;
  const char* name;
  std::vector<std::string> markers;  // special tokens the rendered text may hold
  std::vector<std::string> ends;     // markers that end the assistant's turn
  bool bos;                          // the text starts with the vocabulary's BOS
};

const std::vector<FamilyInfo>& families() {
  static const std::vector<FamilyInfo> f = {
      {ChatFamily::Plain, "plain", {}, {}, true},
      {ChatFamily::ChatML, "chatml", {"<|im_start|>", "<|im_end|>"}, {"<|im_end|>"}, false},
      {ChatFamily::Llama2, "llama-2", {"<s>", "</s>"}, {}, true},
      {ChatFamily::Llama3, "llama-3",
       {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}, {"<|eot_id|>"}, true},
      {ChatFamily::Mistral, "mistral", {"[INST]", "[/INST]", "</s>"}, {}, true},
      {ChatFamily::Phi3, "phi-3", {"<|system|>", "<|user|>", "<|assistant|>", "<|end|>"}, {"<|end|>"}, true},
      {ChatFamily::Gemma, "gemma", {"<start_of_turn>", "<end_of_turn>"}, {"<end_of_turn>"}, true},
      {ChatFamily::Zephyr, "zephyr", {"<|system|>", "<|user|>", "<|assistant|>", "</s>"}, {}, true},
  };
  return f;
}

const FamilyInfo& info(ChatFamily f) {
  for (const FamilyInfo& i : families())
    if (i.family == f) return i;
  return families().front();
}

bool has(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

}  // namespace

const char* chat_family_name(ChatFamily f) { return info(f).name; }

std::optional<ChatFamily> chat_family_by_name(std::string_view name) {
  for (const FamilyInfo& i : families())
    if (name == i.name) return i.family;
  return std::nullopt;
}

std::vector<std::string> chat_family_names() {
  std::vector<std::string> names;
  for (const FamilyInfo& i : families()) names.emplace_back(i.name);
  return names;
}

ChatFamily detect_chat_family(std::string_view t) {
  if (has(t, "<|im_start|>")) return ChatFamily::ChatML;
  if (has(t, "<|start_header_id|>") && has(t, "<|eot_id|>")) return ChatFamily::Llama3;
  if (has(t, "<start_of_turn>")) return ChatFamily::Gemma;
  if (has(t, "<|assistant|>") && has(t, "<|end|>")) return ChatFamily::Phi3;
  if (has(t, "<|assistant|>") && has(t, "<|user|>")) return ChatFamily::Zephyr;
  if (has(t, "[INST]") && has(t, "<<SYS>>")) return ChatFamily::Llama2;
  if (has(t, "[INST]")) return ChatFamily::Mistral;
  return ChatFamily::Plain;
}

ChatFamily choose_chat_family(std::string_view name, std::string_view model_template) {
  if (name.empty()) return detect_chat_family(model_template);
  if (auto f = chat_family_by_name(name)) return *f;
  const std::string n(name);
  throw Error("--chat-template " + n + ": no such template" + did_you_mean(n, chat_family_names()) +
              "; templates: " + join(chat_family_names()));
}

ChatTemplate::ChatTemplate(ChatFamily family, const Tokenizer& tokenizer) : family_(family), tok_(tokenizer) {
  const FamilyInfo& fi = info(family);
  for (const std::string& m : fi.markers)
    for (int32_t id = 0; id < tok_.n_vocab(); ++id)
      if (tok_.piece(id) == m) {
        markers_.emplace_back(m, id);
        if (std::find(fi.ends.begin(), fi.ends.end(), m) != fi.ends.end()) end_tokens_.push_back(id);
        break;
      }
  std::sort(markers_.begin(), markers_.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages) const {
  std::string out, system;
  for (const ChatMessage& m : messages)
    if (m.role == "system") system += (system.empty() ? "" : "\n") + m.content;
  switch (family_) {
    case ChatFamily::Plain:
      for (const ChatMessage& m : messages) out += (out.empty() ? "" : "\n") + m.content;
      return out;
    case ChatFamily::ChatML:
      for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      return out + "<|im_start|>assistant\n";
    case ChatFamily::Llama3:
      for (const ChatMessage& m : messages)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
      return out + "<|start_header_id|>assistant<|end_header_id|>\n\n";
    case ChatFamily::Phi3:
      for (const ChatMessage& m : messages) out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      return out + "<|assistant|>\n";
    case ChatFamily::Zephyr:
      for (const ChatMessage& m : messages) out += "<|" + m.role + "|>\n" + m.content + "</s>\n";
      return out + "<|assistant|>\n";
    case ChatFamily::Gemma: {
      bool first = true;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") continue;  // Gemma has no system turn: it leads the first user turn
        const std::string text = first && m.role == "user" && !system.empty() ? system + "\n\n" + m.content : m.content;
        out += "<start_of_turn>" + std::string(m.role == "assistant" ? "model" : "user") + "\n" + text + "<end_of_turn>\n";
        first = false;
      }
      return out + "<start_of_turn>model\n";
    }
    case ChatFamily::Llama2:
    case ChatFamily::Mistral: {
      // [INST] user [/INST] answer</s>[INST] ... ; Llama 2 wraps the system prompt in <<SYS>>.
      bool first = true;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") continue;
        if (m.role == "assistant") {
          out += (family_ == ChatFamily::Llama2 ? " " : "") + m.content + (family_ == ChatFamily::Llama2 ? " </s><s>" : "</s>");
          continue;
        }
        std::string text = m.content;
        if (first && !system.empty())
          text = family_ == ChatFamily::Llama2 ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + text : system + "\n\n" + text;
        out += "[INST] " + text + " [/INST]";
        first = false;
      }
      return out;
    }
  }
  return out;
}

std::vector<int32_t> ChatTemplate::tokenize(const std::vector<ChatMessage>& messages) const {
  const std::string text = render(messages);
  std::vector<int32_t> ids;
  if (info(family_).bos && tok_.bos() >= 0) ids.push_back(tok_.bos());
  size_t at = 0;
  auto text_until = [&](size_t end) {
    if (end > at) {
      const std::vector<int32_t> part = tok_.encode(std::string_view(text).substr(at, end - at), false, false);
      ids.insert(ids.end(), part.begin(), part.end());
    }
  };
  while (at < text.size()) {
    size_t best = std::string::npos;
    const std::pair<std::string, int32_t>* marker = nullptr;
    for (const auto& m : markers_) {
      const size_t p = text.find(m.first, at);
      if (p < best) best = p, marker = &m;
    }
    if (!marker) break;
    text_until(best);
    ids.push_back(marker->second);
    at = best + marker->first.size();
  }
  text_until(text.size());
  return ids;
}

}  // namespace semline::serve
