// What the vulkan line tests share: a line built from a model (a GGUF file or a Hugging Face
// folder) and a config placing it on a backend, and the logits of every position of a token
// sequence fed in steps of any size.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

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

// Logits of every position of `tokens` (one new sequence from position 0), fed in steps of `chunk`.
inline std::vector<std::vector<float>> all_logits(Pipeline& p, const std::vector<int32_t>& tokens, int chunk) {
  std::vector<std::vector<float>> out;
  const int32_t seq = p.kv().new_sequence();
  for (size_t start = 0; start < tokens.size(); start += chunk) {
    const int32_t n = static_cast<int32_t>(std::min<size_t>(chunk, tokens.size() - start));
    p.kv().reserve(seq, n);
    SeqView sv = p.kv().view(seq);
    std::vector<int32_t> pos(n), seqs(n, 0), rows(n);
    for (int32_t i = 0; i < n; ++i) pos[i] = sv.n_past + i, rows[i] = i;
    Batch b;
    b.n_tokens = n;
    b.tokens = tokens.data() + start;
    b.positions = pos.data();
    b.seq = seqs.data();
    b.n_seqs = 1;
    b.seqs = &sv;
    b.n_outputs = n;
    b.output_rows = rows.data();
    auto logits = p.forward(b);
    const size_t v = logits.size() / n;
    for (int32_t i = 0; i < n; ++i) out.emplace_back(logits.begin() + i * v, logits.begin() + (i + 1) * v);
    p.kv().advance(seq, n);
  }
  p.kv().free_sequence(seq);
  return out;
}

}  // namespace semline::vktest
