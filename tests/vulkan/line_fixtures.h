// What the vulkan line tests share: a line built from a model (a GGUF file or a Hugging Face
// folder) and a config placing it on a backend, and the logits of every position of a token
// sequence fed in steps of any size.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/pipeline_logits.h"
#include "common/test_plugins.h"
#include "core/config/config.h"
#include "core/engine/pipeline.h"
#include "core/graph/graph.h"
#include "core/model/model_file.h"

namespace semline::vktest {

struct Line {
  Config config;
  std::unique_ptr<ModelFile> model;
  PipelineGraph graph;
  std::unique_ptr<Pipeline> pipeline;
  // backend: runtime.backend; extra: more config tables.
  Line(const std::string& path, const std::string& backend, const std::string& extra, int32_t max_seqs = 1)
      : config(parse_config("[model]\npath = \"" + path + "\"\n[runtime]\nbackend = \"" + backend +
                                "\"\nthreads = 2\ncontext = 256\n" + extra,
                            "vulkan.toml")),
        model(open_model_file(path)) {
    graph = build_graph(config, *model, testing::built_plugins());
    PipelineOptions opt = pipeline_options(config);
    opt.kv.max_seqs = max_seqs;
    pipeline = std::make_unique<Pipeline>(graph, *model, testing::built_plugins(), opt);
  }
  // The backend each kind of station was placed on, e.g. "ffn" -> "cpu".
  std::string backend_of(StageKind kind) const {
    for (const auto& block : graph.blocks)
      for (const auto& [norm, op] : block) {
        if (norm.kind == kind) return norm.backend;
        if (op.kind == kind) return op.backend;
      }
    return kind == StageKind::Head ? graph.head.backend : graph.embedding.backend;
  }
};

using testing::all_logits;

}  // namespace semline::vktest
