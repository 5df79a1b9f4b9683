// semline SDK — stage parameters: the schema an entry declares and the values a config gives.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace semline {

// ParamValue's alternatives come in ParamType's order: a value's index() is its type.
enum class ParamType { Bool, Int, Float, String, StringList, IntList, FloatList };
inline const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::Bool: return "bool";
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::String: return "string";
    case ParamType::StringList: return "string list";
    case ParamType::IntList: return "int list";
    case ParamType::FloatList: return "float list";
  }
  return "?";
}

using ParamValue = std::variant<bool, int64_t, double, std::string, std::vector<std::string>, std::vector<int64_t>,
                                std::vector<double>>;

std::string param_value_string(const ParamValue& v);

// One parameter an entry accepts. The config is checked against it before the factory runs, so a
// factory only ever sees values of the declared type, inside [min, max] and among `choices`.
// A list's bounds and choices apply to each element; an integer given for a float (or an integer
// list for a float list) is converted.
struct ParamSpec {
  std::string name;
  ParamType type = ParamType::Int;
  ParamValue default_value;
  std::string doc;
  std::optional<double> min, max;    // numeric range, inclusive (int, float and their lists)
  std::vector<std::string> choices;  // allowed strings (each element for a list); empty: any
};

// Validated parameter values, defaults filled in.
class Params {
 public:
  std::map<std::string, ParamValue> values;

  bool get_bool(const std::string& k) const { return std::get<bool>(values.at(k)); }
  int64_t get_int(const std::string& k) const { return std::get<int64_t>(values.at(k)); }
  double get_float(const std::string& k) const { return std::get<double>(values.at(k)); }
  const std::string& get_string(const std::string& k) const { return std::get<std::string>(values.at(k)); }
  const std::vector<std::string>& get_list(const std::string& k) const {
    return std::get<std::vector<std::string>>(values.at(k));
  }
  const std::vector<int64_t>& get_int_list(const std::string& k) const {
    return std::get<std::vector<int64_t>>(values.at(k));
  }
  const std::vector<double>& get_float_list(const std::string& k) const {
    return std::get<std::vector<double>>(values.at(k));
  }
};

namespace detail {
// Writes a parameter value as TOML would (strings quoted, lists bracketed).
struct ParamText {
  std::string operator()(bool b) const { return b ? "true" : "false"; }
  std::string operator()(int64_t i) const { return std::to_string(i); }
  std::string operator()(double d) const {
    std::string s = std::to_string(d);
    while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
    return s;
  }
  std::string operator()(const std::string& s) const { return "\"" + s + "\""; }
  template <class T>
  std::string operator()(const std::vector<T>& l) const {
    std::string s = "[";
    for (size_t i = 0; i < l.size(); ++i) s += (i ? ", " : "") + (*this)(l[i]);
    return s + "]";
  }
};
}  // namespace detail

inline std::string param_value_string(const ParamValue& v) { return std::visit(detail::ParamText{}, v); }

// The numbers a value holds: an int or a float, or a list's elements (none for bools and strings).
inline std::vector<double> param_numbers(const ParamValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return {static_cast<double>(*i)};
  if (const auto* d = std::get_if<double>(&v)) return {*d};
  if (const auto* l = std::get_if<std::vector<int64_t>>(&v)) return std::vector<double>(l->begin(), l->end());
  if (const auto* l = std::get_if<std::vector<double>>(&v)) return *l;
  return {};
}

}  // namespace semline
