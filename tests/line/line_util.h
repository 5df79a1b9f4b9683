// What the line tests share: a scratch folder, a line built from a model (a GGUF file or a
// Hugging Face folder) and a config, logits fed in steps of any size, the float64 llama
// reference's logits, and the error measure. The line tests that hold on every backend are
// instantiated per target (tests/stations/targets.h) with the target's backend in the config.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/compare.h"
#include "common/pipeline_logits.h"
#include "common/reference_llama.h"
#include "common/test_plugins.h"
#include "core/config/config.h"
#include "core/engine/pipeline.h"
#include "core/graph/graph.h"
#include "core/model/model_file.h"

namespace semline::linetest {

// A file in this process's scratch folder (removed by the test that made it).
inline std::filesystem::path scratch(const std::string& name) {
  std::filesystem::path d = std::filesystem::temp_directory_path() / ("semline-line-" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d / name;
}

// The config of a line over `model`: [runtime] with 2 threads and a context of 256, continued by
// `extra` (which may add keys to [runtime], then tables). Errors name "line.toml"; extra starts
// at its line 6.
inline Config line_config(const std::filesystem::path& model, const std::string& extra) {
  return parse_config("[model]\npath = \"" + model.string() + "\"\n[runtime]\nthreads = 2\ncontext = 256\n" + extra,
                      "line.toml");
}

// The [runtime] line that places a line on a backend, to begin `extra` with.
inline std::string on_backend(const std::string& name) { return "backend = \"" + name + "\"\n"; }

// A line over a model file or folder.
struct Line {
  Config config;
  std::unique_ptr<ModelFile> model;
  PipelineGraph graph;
  std::unique_ptr<Pipeline> pipeline;

  explicit Line(const std::filesystem::path& path, const std::string& extra = "", int32_t max_seqs = 1)
      : config(line_config(path, extra)), model(open_model_file(path.string())) {
    graph = build_graph(config, *model, testing::built_plugins());
    PipelineOptions opt = pipeline_options(config);
    opt.kv.max_seqs = max_seqs;
    pipeline = std::make_unique<Pipeline>(graph, *model, testing::built_plugins(), opt);
  }
  // Logits after each token of one new sequence, fed `chunk` tokens per step.
  std::vector<std::vector<float>> logits(const std::vector<int32_t>& tokens, int32_t chunk = 1) {
    return testing::all_logits(*pipeline, tokens, chunk);
  }
  // The backend the first station of a kind was placed on, e.g. "ffn" -> "cpu".
  std::string backend_of(StageKind kind) const {
    for (const auto& block : graph.blocks)
      for (const GraphSublayer& sub : block) {
        if (sub.norm.kind == kind) return sub.norm.backend;
        if (sub.op.kind == kind) return sub.op.backend;
      }
    return kind == StageKind::Head ? graph.head.backend : graph.embedding.backend;
  }
};

// What building a line over `path` with `extra` throws ("accepted" when it does not).
inline std::string line_error(const std::filesystem::path& path, const std::string& extra) {
  try {
    Line line(path, extra);
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

// The float64 llama reference's logits after each token.
inline std::vector<std::vector<double>> llama_reference(const ModelView& model, const std::vector<int32_t>& tokens,
                                                        const testing::ReferenceOptions& opt = {}) {
  testing::ReferenceLlama ref(model, testing::read_llama_hparams(model), opt);
  std::vector<std::vector<double>> want;
  for (int32_t t : tokens) want.push_back(ref.step(t));
  return want;
}

// The largest relative error of any position's logits (rel_err of each row).
template <class B>
double worst_rel_err(const std::vector<std::vector<float>>& got, const std::vector<B>& want) {
  if (got.size() != want.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, testing::rel_err(got[i], want[i]));
  return worst;
}

using testing::rel_err;

}  // namespace semline::linetest
