// The tokenizer stations: "spm" serves tokenizer.ggml.model = "llama", "bpe" serves "gpt2", "char"
// serves "char".
#pragma once

#include <semline/registry.h>

namespace semline::tokenizers {

void register_tokenizers(Registry& registry);

}  // namespace semline::tokenizers
