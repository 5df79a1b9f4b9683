#version 450
// g = silu(g) * u over n contiguous values: the SwiGLU gate; with GATED = 1, g = g * u (GeGLU:
// the gelu kernel has already turned g into gelu(g)).
#include "extensions.glsl"
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint GATED = 0;

layout(std430, binding = 0) buffer S { float s[]; };

layout(push_constant) uniform Push { uint g_off, u_off, n; } p;

void main() {
  const uint i = group_index() * WG + gl_LocalInvocationID.x;
  if (i >= p.n) return;
  const float g = s[p.g_off + i];
  s[p.g_off + i] = (GATED != 0u ? g : g / (1.0 + exp(-g))) * s[p.u_off + i];
}
