// "key=value" assignments from the command line and benchmark grids, checked like a config file.
#include <toml++/toml.h>

#include "core/config/merge.h"
#include "semline/error.h"

namespace semline {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A value opening with a quote, bracket or brace is meant as TOML and must parse as such, so
// its syntax error is reported; any other text that is not a TOML value is a plain string.
bool is_toml_value(std::string_view value) {
  char first = value.empty() ? '\0' : value.front();
  if (first == '"' || first == '\'' || first == '[' || first == '{') return true;
  try {
    (void)toml::parse("v=" + std::string(value));
    return true;
  } catch (const toml::parse_error&) {
    return false;
  }
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

}  // namespace

void apply_override(Config& c, std::string_view assignment) {
  const std::string source = "override '" + std::string(assignment) + "'";
  if (assignment.find_first_of("\r\n") != std::string_view::npos)
    throw Error(source + ": an override is one line, key=value");
  size_t eq = assignment.find('=');
  if (eq == std::string_view::npos)
    throw Error(source + ": expected key=value, e.g. stages.attention.variant=flash");
  std::string_view key = assignment.substr(0, eq);
  std::string_view value = assignment.substr(eq + 1);
  if (trim(key).empty()) throw Error(source + ": no key before '='; expected key=value, e.g. runtime.threads=4");
  if (trim(value).empty()) throw Error(source + ": no value after '='; expected key=value, e.g. runtime.threads=4");

  // Rebuilt so that columns in the text match columns in the assignment.
  std::string text(assignment);
  if (!is_toml_value(trim(value))) {
    size_t lead = value.find_first_not_of(" \t");
    text = std::string(key) + "=" + std::string(value.substr(0, lead)) + toml_string(trim(value));
  }
  Config updated = c;
  config_detail::merge_toml(updated, text, source, {});
  c = std::move(updated);
}

}  // namespace semline
