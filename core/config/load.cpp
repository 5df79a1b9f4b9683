// Reading a config file or text: the schema merge into a fresh Config, then what must be present.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/config/merge.h"
#include "semline/error.h"

namespace semline {
namespace {

// A config is a few kilobytes; anything this large is the wrong file.
constexpr std::uintmax_t kMaxConfigBytes = 4u << 20;

void require_model(const Config& c, const std::string& name) {
  if (c.model.path.empty())
    throw Error(name + ": no model; add [model] with path = \"<model file>.gguf\"");
}

std::string read_file(const std::filesystem::path& file) {
  std::error_code ec;
  auto status = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::exists(status))
    throw Error("config file " + file.string() + ": not found");
  if (!std::filesystem::is_regular_file(status))
    throw Error("config file " + file.string() + ": not a regular file");
  auto size = std::filesystem::file_size(file, ec);
  if (!ec && size > kMaxConfigBytes)
    throw Error("config file " + file.string() + ": " + std::to_string(size) + " bytes; a config is at most " +
                std::to_string(kMaxConfigBytes) + " bytes");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("config file " + file.string() + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error("config file " + file.string() + ": read failed (" + std::strerror(errno) + ")");
  return text.str();
}

}  // namespace

Config load_config(const std::filesystem::path& file) {
  Config c;
  c.file = file;
  config_detail::merge_toml(c, read_file(file), file.string(), file.parent_path());
  require_model(c, file.string());
  return c;
}

Config parse_config(std::string_view text, const std::string& name) {
  Config c;
  config_detail::merge_toml(c, text, name, {});
  require_model(c, name);
  return c;
}

}  // namespace semline
