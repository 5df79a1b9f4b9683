// What the line tests on synthetic models share: a scratch folder, a line built from a model
// file and a config, logits fed in steps of any size, and the error measure.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/compare.h"
#include "common/pipeline_logits.h"
#include "common/test_plugins.h"
#include "core/config/config.h"
#include "core/engine/pipeline.h"
#include "core/graph/graph.h"
#include "core/model/gguf.h"

namespace semline::linetest {

// A file in this process's scratch folder (removed by the test that made it).
inline std::filesystem::path scratch(const std::string& name) {
  std::filesystem::path d = std::filesystem::temp_directory_path() / ("semline-line-" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d / name;
}

inline Config line_config(const std::filesystem::path& model, const std::string& extra) {
  return parse_config("[model]\npath = \"" + model.string() + "\"\n[runtime]\nthreads = 2\ncontext = 256\n" + extra,
                      "q.toml");
}

// A line over a model file; `extra` continues the [runtime] table and may add others.
struct Run {
  std::unique_ptr<gguf::GgufFile> model;
  PipelineGraph graph;
  std::unique_ptr<Pipeline> pipeline;
  explicit Run(const std::filesystem::path& path, const std::string& extra = "") {
    Config c = line_config(path, extra);
    model = gguf::GgufFile::open(path);
    graph = build_graph(c, *model, testing::built_plugins());
    pipeline = std::make_unique<Pipeline>(graph, *model, testing::built_plugins(), pipeline_options(c));
  }
  // Logits after each token of one new sequence, fed `chunk` tokens per step.
  std::vector<std::vector<float>> logits(const std::vector<int32_t>& tokens, int32_t chunk = 1) {
    return testing::all_logits(*pipeline, tokens, chunk);
  }
};

using testing::rel_err;

}  // namespace semline::linetest
