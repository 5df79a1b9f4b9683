// The stations written once, over a backend's kernels (stations/kernels.h), and their registry
// entries: a backend plugin calls add_stations with its name and how to find its kernels.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <semline/registry.h>
#include <semline/stage.h>

#include "stations/kernels.h"
#include "stations/ssm.h"

namespace semline::stations {

std::unique_ptr<Stage> make_embedding_lookup(const StageContext& ctx, Kernels& k);
std::unique_ptr<Stage> make_norm(const StageContext& ctx, Kernels& k, NormKind kind);
std::unique_ptr<Stage> make_ffn_dense(const StageContext& ctx, Kernels& k);
std::unique_ptr<Stage> make_head_dense(const StageContext& ctx, Kernels& k);
std::unique_ptr<Stage> make_ffn_moe(const StageContext& ctx, Kernels& k);

// norm/rms refuses a station with a bias (a LayerNorm).
std::vector<std::string> norm_rms_supports(const StageContext& ctx, std::string_view backend);

// The kernels of the backend behind a stage's context (throws naming the station when the
// context's backend is another one).
using KernelsOf = std::function<Kernels&(const StageContext&)>;

// Adds embedding/lookup, norm/rms, norm/layer, ffn/dense, ffn/moe and head/dense for `backend`.
void add_stations(Registry& r, const std::string& backend, KernelsOf kernels_of);

// The registry entry of an attention variant (dense, flash, sliding_window, block_sparse) for
// `backend`, whose kernels give it a core (Kernels::bind_attention). A backend may add its own
// parameters, limits and reasons to the entry before adding it.
StageEntry attention_entry(const std::string& variant, const std::string& backend, KernelsOf kernels_of);

// ssm/mamba (Mamba-1) and ssm/mamba2 for `backend`, over its linear products and norms
// (kernels_of) and its convolution and scan (ssm_kernels_of).
using SsmKernelsOf = std::function<SsmKernels&(const StageContext&)>;
void add_ssm_stations(Registry& r, const std::string& backend, KernelsOf kernels_of, SsmKernelsOf ssm_kernels_of);

// Parameter defaults of the attention variants (what `semline plugins` shows).
inline constexpr int64_t kDefaultBlock = 64;  // flash, sliding_window: keys per tile; block_sparse: block size
inline constexpr int64_t kDefaultLocal = 4, kDefaultGlobal = 1, kDefaultStride = 8;  // block_sparse

}  // namespace semline::stations
