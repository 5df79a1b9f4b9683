// What the engine tests share: a line over a model file, and the updates each choice received.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/test_plugins.h"
#include "core/config/config.h"
#include "core/engine/engine.h"
#include "core/graph/graph.h"
#include "core/model/model_file.h"
#include "core/model/quantize.h"
#include "core/model/synth.h"

#include <unistd.h>

namespace semline::engine_test {

inline const std::string kStories = std::string(SEMLINE_MODELS_DIR) + "/gguf/stories260K.gguf";

// A folder of its own for files a test writes, removed with it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("semline-engine-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
  // stories260K re-encoded to `dtype`, written here.
  std::string stories_as(DType dtype) const {
    const std::string out = file("stories-" + std::string(dtype_name(dtype)) + ".gguf");
    quantize_gguf(kStories, out, dtype);
    return out;
  }
  // The "tiny" synthetic llama of `seed`, written here.
  std::string tiny(uint64_t seed) const {
    SynthSpec s = synth_preset("tiny");
    s.seed = seed;
    const std::string out = file("tiny-" + std::to_string(seed) + ".gguf");
    synth_write(s, out);
    return out;
  }
};

// Rows sampled on four threads (more than the machine's cores, so their order varies).
inline EngineOptions seqs(int32_t n) {
  EngineOptions o;
  o.max_seqs = n;
  o.threads = 4;
  return o;
}

struct Line {
  std::unique_ptr<ModelFile> model;
  PipelineGraph graph;
  std::unique_ptr<Pipeline> pipeline;
  explicit Line(const std::string& path, const std::string& extra = "",
                const StageRegistry& registry = testing::built_plugins())
      : model(open_model_file(path)) {
    const Config c = parse_config("[model]\npath = \"" + path + "\"\n[runtime]\nthreads = 2\ncontext = 256\n" + extra,
                                  "engine.toml");
    graph = build_graph(c, *model, registry);
    pipeline = std::make_unique<Pipeline>(graph, *model, registry, pipeline_options(c));
  }
  std::vector<int32_t> encode(const std::string& text) const { return pipeline->tokenizer().encode(text, true, false); }
};

// Everything one choice received.
struct Received {
  std::vector<int32_t> tokens;
  std::string text;
  std::vector<TokenLogprob> logprobs;
  FinishReason finish = FinishReason::None;
  std::string error;
  ChoiceStats stats;
  int updates = 0;
};

// Collects every choice's updates, by (request, choice).
struct Collector {
  std::map<std::pair<uint64_t, int32_t>, Received> got;
  UpdateFn fn() {
    return [this](const Update& u) {
      Received& r = got[{u.request, u.index}];
      ++r.updates;
      r.tokens.insert(r.tokens.end(), u.tokens.begin(), u.tokens.end());
      r.text += u.text;
      r.logprobs.insert(r.logprobs.end(), u.logprobs.begin(), u.logprobs.end());
      if (u.finish != FinishReason::None) {
        r.finish = u.finish;
        r.error = u.error;
        r.stats = *u.stats;
      }
    };
  }
  const Received& of(uint64_t id, int32_t index = 0) { return got.at({id, index}); }
};

inline RequestOptions request(std::vector<int32_t> prompt, int32_t max_tokens) {
  RequestOptions r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  return r;
}

inline const std::vector<std::string> kPrompts = {
    "Once upon a time",   "The little dog",        "Tom and Sue went to the park", "Lily had a red ball",
    "One day, a big cat", "The sun was hot and",   "Ben wanted to fly",            "There was a tree",
    "Mom said no",        "The bird sang a song",  "A girl named Mia",             "The boat was small",
};

// n requests of max_tokens over kPrompts in turn.
inline std::vector<RequestOptions> story_requests(const Line& line, int32_t n, int32_t max_tokens) {
  std::vector<RequestOptions> out;
  for (int32_t i = 0; i < n; ++i)
    out.push_back(request(line.encode(kPrompts[static_cast<size_t>(i) % kPrompts.size()]), max_tokens));
  return out;
}

// What each prompt gives alone, greedy, through an engine of its own.
inline std::vector<Received> alone(Line& line, const std::vector<std::vector<int32_t>>& prompts, int32_t max_tokens,
                            const SamplingParams& sampling = {}) {
  std::vector<Received> out;
  for (const auto& p : prompts) {
    Engine e(*line.pipeline, seqs(1));
    Collector c;
    RequestOptions r = request(p, max_tokens);
    r.sampling = sampling;
    const uint64_t id = e.submit(r, c.fn());
    e.run();
    out.push_back(c.of(id));
  }
  return out;
}


}  // namespace semline::engine_test
