// Reading the JSON files of a Hugging Face folder (config.json, tokenizer.json,
// tokenizer_config.json): every getter names the file and the key in its error, and what would be
// valid. A key holding null reads as absent, as transformers reads it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace semline::hf {

using json = nlohmann::json;

// The text of a file of at most `max_bytes`.
std::string read_text(const std::filesystem::path& p, uint64_t max_bytes);

// `text` parsed; it must be a JSON object. `name` stands for the file in messages.
json parse_object(std::string_view text, const std::string& name);

// j[key], or null when absent or null.
const json* find(const json& j, std::string_view key);

// A positive integer below 2^31 (sizes are recorded as u32); absent: `fallback`, else an error
// ending with `missing_hint`.
int64_t positive(const json& j, std::string_view key, const std::string& name, std::optional<int64_t> fallback = {},
                 std::string_view missing_hint = {});
std::optional<int64_t> find_positive(const json& j, std::string_view key, const std::string& name);
// A number > 0.
std::optional<double> find_positive_number(const json& j, std::string_view key, const std::string& name);
bool flag(const json& j, std::string_view key, bool fallback, const std::string& name);
std::optional<std::string> find_string(const json& j, std::string_view key, const std::string& name);
// config.json's `architectures`, where given, must list the one class semline reads for its
// model_type (a causal LM, not a classifier or an encoder of the same family).
void check_architecture(const json& j, std::string_view model_type, std::string_view architecture,
                        const std::string& name);
// A token id (an integer below 2^31); for a list of ids (eos_token_id of Llama 3.1), the first.
std::optional<int64_t> token_id(const json& j, std::string_view key, const std::string& name);

}  // namespace semline::hf
