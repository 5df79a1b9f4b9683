#version 450
// out[r] (+)= row idx[r] of src, converted to float: the embedding lookup (src = the token table,
// idx = the step's tokens; then, adding, the learned position rows by the step's positions) and
// the head's gather of output rows (src = F32 activations).
#include "extensions.glsl"
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint DTYPE = DT_F32;

layout(std430, binding = 0) readonly buffer Src { uint wdata[]; };
layout(std430, binding = 1) readonly buffer Idx { int ints[]; };
layout(std430, binding = 2) buffer Out { float o[]; };

layout(push_constant) uniform Push {
  uint src_off;   // bytes
  uint src_row;   // bytes between source rows
  uint n;         // values per row
  uint idx_off;   // words into ints
  uint out_off;   // words
  uint out_stride;
  uint rows;
  uint accumulate;
} p;

#include "weights.glsl"

void main() {
  const uint r = group_index();
  if (r >= p.rows) return;
  const uint rb = p.src_off + uint(ints[p.idx_off + r]) * p.src_row;
  const uint ob = p.out_off + r * p.out_stride;
  for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG)
    o[ob + i] = p.accumulate != 0u ? o[ob + i] + weight_at(rb, i) : weight_at(rb, i);
}
