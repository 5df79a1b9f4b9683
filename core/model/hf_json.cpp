#include "core/model/hf_json.h"

#include <spdlog/fmt/fmt.h>

#include "core/model/mapped_file.h"
#include "semline/error.h"

namespace semline::hf {

namespace {

// Sizes are recorded as u32 metadata; no model comes near that.
constexpr uint64_t kMaxSize = uint64_t{1} << 31;

}  // namespace

std::string read_text(const std::filesystem::path& p, uint64_t max_bytes) {
  MappedFile f(p);
  if (f.bytes().size() > max_bytes)
    throw Error(fmt::format("{}: {} bytes, more than the {} such a file may have", p.string(), f.bytes().size(),
                            max_bytes));
  return std::string(reinterpret_cast<const char*>(f.bytes().data()), f.bytes().size());
}

json parse_object(std::string_view text, const std::string& name) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(name + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(name + ": JSON " + j.type_name() + ", expected an object");
  return j;
}

const json* find(const json& j, std::string_view key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

int64_t positive(const json& j, std::string_view key, const std::string& name, std::optional<int64_t> fallback,
                 std::string_view missing_hint) {
  if (auto v = find_positive(j, key, name)) return *v;
  if (fallback && *fallback > 0 && static_cast<uint64_t>(*fallback) < kMaxSize) return *fallback;
  if (fallback)
    throw Error(fmt::format("{}: {} is absent and its default, {}, is not a positive integer below 2^31", name, key,
                            *fallback));
  throw Error(fmt::format("{}: key '{}' is missing{}", name, key, missing_hint));
}

std::optional<int64_t> find_positive(const json& j, std::string_view key, const std::string& name) {
  const json* v = find(j, key);
  if (!v) return std::nullopt;
  if (!v->is_number_unsigned() || v->get<uint64_t>() == 0 || v->get<uint64_t>() >= kMaxSize)
    throw Error(fmt::format("{}: {} = {} must be a positive integer below 2^31", name, key, v->dump()));
  return static_cast<int64_t>(v->get<uint64_t>());
}

std::optional<double> find_positive_number(const json& j, std::string_view key, const std::string& name) {
  const json* v = find(j, key);
  if (!v) return std::nullopt;
  if (!v->is_number() || !(v->get<double>() > 0))
    throw Error(fmt::format("{}: {} = {} must be a positive number", name, key, v->dump()));
  return v->get<double>();
}

bool flag(const json& j, std::string_view key, bool fallback, const std::string& name) {
  const json* v = find(j, key);
  if (!v) return fallback;
  if (!v->is_boolean()) throw Error(fmt::format("{}: {} = {} must be true or false", name, key, v->dump()));
  return v->get<bool>();
}

std::optional<std::string> find_string(const json& j, std::string_view key, const std::string& name) {
  const json* v = find(j, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw Error(fmt::format("{}: {} = {} must be a string", name, key, v->dump()));
  return v->get<std::string>();
}

void check_architecture(const json& j, std::string_view model_type, std::string_view architecture,
                        const std::string& name) {
  const json* archs = find(j, "architectures");
  if (!archs) return;
  if (!archs->is_array() || archs->size() != 1 || !(*archs)[0].is_string())
    throw Error(name + ": architectures = " + archs->dump() + " must list one class name");
  const std::string a = (*archs)[0].get<std::string>();
  if (a != architecture)
    throw Error(fmt::format("{}: architectures [\"{}\"] with model_type \"{}\": semline reads {} (a causal LM, "
                            "not a classifier or an encoder)",
                            name, a, model_type, architecture));
}

std::optional<int64_t> token_id(const json& j, std::string_view key, const std::string& name) {
  const json* v = find(j, key);
  if (!v) return std::nullopt;
  const json* id = v->is_array() && !v->empty() ? &(*v)[0] : v;
  if (!id->is_number_unsigned() || id->get<uint64_t>() >= kMaxSize)
    throw Error(fmt::format("{}: {} = {} must be null, a token id or a list of them", name, key, v->dump()));
  return static_cast<int64_t>(id->get<uint64_t>());
}

}  // namespace semline::hf
