#include "vocab_tokenizer.h"

#include <semline/error.h>

namespace semline::tokenizers {

int32_t VocabTokenizer::checked(int32_t id) const {
  if (id < 0 || id >= vocab_.size())
    fail("token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_.size()) + ")");
  return id;
}

void VocabTokenizer::fail(const std::string& what) const { throw Error(origin_ + ": " + what); }

std::string VocabTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  for (int32_t id : ids) text += bytes_[checked(id)];
  return text;
}

}  // namespace semline::tokenizers
