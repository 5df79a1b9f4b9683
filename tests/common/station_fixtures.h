// What the station tests of every backend share: the small llama layer they run, its binding
// context, building a stage from a backend's entries, and a KV cache of one layer on a backend.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <semline/backend.h>
#include <semline/stage.h>

#include "common/plugin_fixtures.h"

namespace semline::testing {

// Attention geometry: query heads, kv heads, dims per head, rotated dims.
struct Heads {
  int64_t n_head = 8, n_kv = 2, head_dim = 8, rope_dim = 8;
};

// A small llama layer's hyper-parameters: n_embd 64, n_ff 96, 67 tokens, the given heads and
// rope; n_ctx_train as given (shorter than a test's context makes dense attention grow its rows).
HParams layer_hparams(RopeType rope_type, Heads h, int64_t n_ctx_train);

// The context binding `station` of that layer on `be`, `tensors` role -> name in `model`.
StageContext layer_context(Backend& be, const FakeModel& model, const HParams& hp, std::string station,
                           std::vector<std::pair<std::string, std::string>> tensors, int32_t max_tokens);

// The stage of `entries`' entry for a context, its parameters defaulted then set from `params`;
// requires the entry's supports() to accept the station.
std::unique_ptr<Stage> build_stage(const RecordingRegistry& entries, StageKind kind, const std::string& variant,
                                   StageContext ctx, std::map<std::string, ParamValue> params);

// How a cache nests its rows; stations read the strides, so each is valid.
enum class CacheLayout {
  SlotMajor,   // a position's heads together, blocks outermost
  HeadMajor,   // within a block, a head's positions together; blocks outermost
  HeadsApart,  // each kv head's blocks together, one after another (the host's pools)
};

// A KV cache of one layer allocated on a backend.
struct Cache {
  std::unique_ptr<Buffer> kbuf, vbuf;
  KvLayer layer;
  Cache(Backend& be, const HParams& hp, DType dt, int32_t block_tokens, int64_t n_blocks,
        CacheLayout layout = CacheLayout::SlotMajor);
};

// q, k, v and o of the layer's attention, in dtype dt; kAttnTensors binds them.
void add_attention_weights(FakeModel& model, const HParams& hp, DType dt);
inline const std::vector<std::pair<std::string, std::string>> kAttnTensors = {
    {"q", "q"}, {"k", "k"}, {"v", "v"}, {"o", "o"}};

inline constexpr DType kAllWeights[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

}  // namespace semline::testing
