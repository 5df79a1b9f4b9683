#include "core/config/config.h"

namespace semline {

std::string SourcePos::str() const {
  std::string where = file.empty() ? "<config>" : file;
  if (line <= 0) return where;
  return where + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string config_error(const SourcePos& pos, std::string_view message) {
  return pos.str() + ": " + std::string(message);
}

}  // namespace semline
