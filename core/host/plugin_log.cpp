#include "core/host/plugin_log.h"

#include <spdlog/spdlog.h>

namespace semline {
namespace {

spdlog::level::level_enum spdlog_level(LogLevel level) {
  switch (level) {
    case LogLevel::Trace: return spdlog::level::trace;
    case LogLevel::Debug: return spdlog::level::debug;
    case LogLevel::Info: return spdlog::level::info;
    case LogLevel::Warn: return spdlog::level::warn;
    case LogLevel::Error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

LogFn plugin_log(std::string plugin) {
  return [plugin = std::move(plugin)](LogLevel level, std::string_view message) {
    spdlog::log(spdlog_level(level), "[{}] {}", plugin, message);
  };
}

}  // namespace semline
