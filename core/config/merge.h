// The schema, shared by config files and command-line overrides: TOML text merged into a Config.
// Internal to core/config.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/config/config.h"

namespace semline::config_detail {

// Parses `text` and merges every key it holds into `c`, checking each against the schema:
// scalars replace, stage tables and runtime.prefer merge key by key, [[stages.layers]] append.
// `source` names the text in positions; relative paths are resolved against `base_dir` unless it
// is empty. On error `c` may be partly updated: callers that must keep it intact merge a copy.
void merge_toml(Config& c, std::string_view text, const std::string& source,
                const std::filesystem::path& base_dir);

}  // namespace semline::config_detail
