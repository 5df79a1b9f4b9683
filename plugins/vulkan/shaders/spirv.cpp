#include "shaders/spirv.h"

#include <iterator>

namespace semline::vk {
namespace {

// Each .inc is glslc's "-mfmt=num" output: the SPIR-V words as comma-separated hex numbers.
// "sg" variants are compiled with USE_SUBGROUPS, "sh" without.
const uint32_t kGetRows[] = {
#include "get_rows.sh.inc"
};
const uint32_t kSwiglu[] = {
#include "swiglu.sh.inc"
};
const uint32_t kMatmul[] = {
#include "matmul.sh.inc"
};
const uint32_t kRopeStore[] = {
#include "rope_store.sh.inc"
};
const uint32_t kRmsNormSg[] = {
#include "rms_norm.sg.inc"
};
const uint32_t kRmsNormSh[] = {
#include "rms_norm.sh.inc"
};
const uint32_t kMatvecSg[] = {
#include "matvec.sg.inc"
};
const uint32_t kMatvecSh[] = {
#include "matvec.sh.inc"
};
const uint32_t kAttnDenseSg[] = {
#include "attn_dense.sg.inc"
};
const uint32_t kAttnDenseSh[] = {
#include "attn_dense.sh.inc"
};
const uint32_t kAttnFlashSg[] = {
#include "attn_flash.sg.inc"
};
const uint32_t kAttnFlashSh[] = {
#include "attn_flash.sh.inc"
};
const uint32_t kLayerNormSg[] = {
#include "layer_norm.sg.inc"
};
const uint32_t kLayerNormSh[] = {
#include "layer_norm.sh.inc"
};
const uint32_t kGelu[] = {
#include "gelu.sh.inc"
};
const uint32_t kMoeRoute[] = {
#include "moe_route.sh.inc"
};
const uint32_t kMoeCombine[] = {
#include "moe_combine.sh.inc"
};
const uint32_t kMap[] = {
#include "map.sh.inc"
};
const uint32_t kSsmConv[] = {
#include "ssm_conv.sh.inc"
};
const uint32_t kSsmScan[] = {
#include "ssm_scan.sh.inc"
};

template <size_t N>
constexpr Spirv blob(const uint32_t (&w)[N]) {
  return Spirv{w, N};
}

const ShaderSource kSources[] = {
    {"get_rows", 3, blob(kGetRows), blob(kGetRows)},
    {"rms_norm", 3, blob(kRmsNormSg), blob(kRmsNormSh)},
    {"matvec", 5, blob(kMatvecSg), blob(kMatvecSh)},
    {"matmul", 5, blob(kMatmul), blob(kMatmul)},
    {"swiglu", 1, blob(kSwiglu), blob(kSwiglu)},
    {"rope_store", 6, blob(kRopeStore), blob(kRopeStore)},
    {"attn_dense", 4, blob(kAttnDenseSg), blob(kAttnDenseSh)},
    {"attn_flash", 4, blob(kAttnFlashSg), blob(kAttnFlashSh)},
    {"layer_norm", 3, blob(kLayerNormSg), blob(kLayerNormSh)},
    {"gelu", 1, blob(kGelu), blob(kGelu)},
    {"moe_route", 2, blob(kMoeRoute), blob(kMoeRoute)},
    {"moe_combine", 3, blob(kMoeCombine), blob(kMoeCombine)},
    {"map", 1, blob(kMap), blob(kMap)},
    {"ssm_conv", 4, blob(kSsmConv), blob(kSsmConv)},
    {"ssm_scan", 4, blob(kSsmScan), blob(kSsmScan)},
};
static_assert(std::size(kSources) == kShaderCount, "one source per ShaderId, in its order");

}  // namespace

const ShaderSource& shader_source(ShaderId id) { return kSources[static_cast<int>(id)]; }

}  // namespace semline::vk
