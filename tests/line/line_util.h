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
    std::vector<std::vector<float>> out;
    Pipeline& p = *pipeline;
    const int32_t seq = p.kv().new_sequence();
    for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(chunk)) {
      const int32_t n = static_cast<int32_t>(std::min<size_t>(static_cast<size_t>(chunk), tokens.size() - start));
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
      auto l = p.forward(b);
      const size_t v = l.size() / static_cast<size_t>(n);
      for (int32_t i = 0; i < n; ++i) out.emplace_back(l.begin() + i * v, l.begin() + (i + 1) * v);
      p.kv().advance(seq, n);
    }
    p.kv().free_sequence(seq);
    return out;
  }
};

using testing::rel_err;

}  // namespace semline::linetest
