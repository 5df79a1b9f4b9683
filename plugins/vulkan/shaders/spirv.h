// The compute shaders, compiled to SPIR-V at build time and embedded in the plugin.
#pragma once

#include <cstddef>
#include <cstdint>

namespace semline::vk {

enum class ShaderId : int {
  GetRows,
  RmsNorm,
  Matvec,
  Matmul,
  Swiglu,
  RopeStore,
  AttnDense,
  AttnFlash,
  LayerNorm,
  Gelu,
  MoeRoute,
  MoeCombine,
  Map,
  SsmConv,
  SsmScan,
};
inline constexpr int kShaderCount = static_cast<int>(ShaderId::SsmScan) + 1;

struct Spirv {
  const uint32_t* words = nullptr;
  size_t count = 0;
};

struct ShaderSource {
  const char* name;
  uint32_t n_buffers;  // storage buffers at bindings 0..n-1
  Spirv subgroup;      // reductions with subgroup arithmetic
  Spirv shared;        // reductions in shared memory only (the same code when a shader has none)
};

const ShaderSource& shader_source(ShaderId id);

}  // namespace semline::vk
