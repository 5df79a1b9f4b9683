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

// Text from a file made safe to print inside an error message: control bytes, backslashes and
// bytes outside ASCII become \xNN, so a hostile name cannot garble the terminal or the log.
std::string printable(std::string_view text);

// "a, b, c"
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

// The pieces of `s` between each `sep` ("a*b" -> "a", "b"; "" -> one empty piece).
std::vector<std::string> split(std::string_view s, char sep);

}  // namespace semline
