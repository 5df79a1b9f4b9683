// Where plugins log: spdlog's default logger, each line prefixed with the plugin's name, so a
// message from Registry::log or StageContext::log says which library wrote it.
#pragma once

#include <string>

#include "semline/stage.h"

namespace semline {

LogFn plugin_log(std::string plugin);

}  // namespace semline
