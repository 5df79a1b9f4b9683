// semline SDK — errors.
//
// Every failure a plugin reports is a semline::Error (or any std::exception). The host catches
// std::exception at each call into a plugin (entry, registration, factories, forward calls) and
// re-throws it with the plugin and stage named, so nothing a plugin throws aborts the host.
// std::exception's type information lives in the shared C++ runtime, so catching it across
// separately loaded libraries is reliable; semline::Error adds nothing a catch must rely on.
#pragma once

#include <stdexcept>
#include <string>

namespace semline {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace semline
