// The files of a Hugging Face GPT-2 folder besides the weights: config.json (the hyper-parameters,
// GPT2Config's keys; gpt2_layout and the dispatch layout_of of hf_layout.h are defined with it)
// and the vocabulary, vocab.json (token -> id) with merges.txt for a byte-level BPE model, or
// vocab.json alone for a character-level one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace semline::hf {

struct Gpt2Config {
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_inner = 0;      // 4 n_embd when the file has none (or null)
  int64_t n_positions = 0;  // learned position rows
  int64_t vocab_size = 0;
  double layer_norm_epsilon = 1e-5;  // GPT2Config's default
  bool gelu_exact = false;  // activation_function "gelu"; "gelu_new" (the default) and
                            // "gelu_pytorch_tanh" are the tanh approximation
  std::optional<int64_t> bos_token_id, eos_token_id;
};

// Parses config.json's text; `name` stands for the file in messages. Refuses a model_type other
// than gpt2, missing or non-positive sizes, an unknown activation_function (naming the valid
// ones) and the options that change the computation (unscaled or layer-scaled attention, cross
// attention).
Gpt2Config parse_gpt2_config(std::string_view text, const std::string& name);

// vocab.json's tokens in id order: the ids must number the entries 0..n-1 without gaps or repeats.
std::vector<std::string> parse_vocab_json(std::string_view text, const std::string& name);

// merges.txt's merges, "left right" each, in rank order (a "#version" first line is skipped).
std::vector<std::string> parse_merges(std::string_view text, const std::string& name);

// `s` as a JSON string, for messages (bytes that are not UTF-8 shown as U+FFFD).
std::string as_json_string(std::string_view s);

// Whether `s` is exactly one well-formed UTF-8 character.
bool is_one_utf8_char(std::string_view s);

}  // namespace semline::hf
