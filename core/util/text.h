// Small text helpers shared by the error messages of the core.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace semline {

// Levenshtein distance between two strings.
size_t edit_distance(std::string_view a, std::string_view b);

// " (did you mean 'x'?)" for the closest candidate within a small edit distance, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// "a, b, c"
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

}  // namespace semline
