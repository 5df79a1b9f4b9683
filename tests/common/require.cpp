#include "common/require.h"

#include <cstdlib>

namespace semline::testing {

bool feature_required(std::string_view feature) {
  const char* env = std::getenv("SEMLINE_REQUIRE");
  if (!env) return false;
  const std::string_view list(env);
  size_t i = 0;
  while (i < list.size()) {
    const size_t end = list.find_first_of(", ", i);
    const std::string_view item = list.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    if (item == feature) return true;
    if (end == std::string_view::npos) break;
    i = end + 1;
  }
  return false;
}

}  // namespace semline::testing
