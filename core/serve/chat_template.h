// Chat templates: messages to the prompt a chat model was trained on. A model's
// tokenizer.chat_template (a Jinja text) is recognised by family from the markers it uses, as
// llama.cpp does, and each family is written here as the text it produces; `plain` (the messages'
// contents, one per line) serves base models without a template, such as stories260K. The
// template's markers are special tokens of the vocabulary: the prompt is tokenized with them as
// single tokens, and the family's end of turn ends a choice like the end-of-sequence token.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <semline/stage.h>

#include "core/serve/api.h"

namespace semline::serve {

enum class ChatFamily { Plain, ChatML, Llama2, Llama3, Mistral, Phi3, Gemma, Zephyr };

const char* chat_family_name(ChatFamily f);
std::optional<ChatFamily> chat_family_by_name(std::string_view name);
std::vector<std::string> chat_family_names();
// The family a Jinja chat template writes (Plain for an empty or unknown one).
ChatFamily detect_chat_family(std::string_view jinja);
// The family a user named (--chat-template; throws naming the valid ones), else the one the
// model's template writes.
ChatFamily choose_chat_family(std::string_view name, std::string_view model_template);

// A family bound to one vocabulary: renders and tokenizes chats.
class ChatTemplate {
 public:
  ChatTemplate(ChatFamily family, const Tokenizer& tokenizer);
  ChatFamily family() const { return family_; }
  // The text of the conversation so far, ending where the assistant's answer starts.
  std::string render(const std::vector<ChatMessage>& messages) const;
  // render() as token ids: the markers the vocabulary has become their own tokens, the rest is
  // encoded as text (with BOS where the family starts with one).
  std::vector<int32_t> tokenize(const std::vector<ChatMessage>& messages) const;
  // Tokens that end the assistant's turn (besides end-of-sequence).
  const std::vector<int32_t>& end_of_turn() const { return end_tokens_; }

 private:
  ChatFamily family_;
  const Tokenizer& tok_;
  std::vector<std::pair<std::string, int32_t>> markers_;  // marker text -> its token, longest first
  std::vector<int32_t> end_tokens_;
};

}  // namespace semline::serve
