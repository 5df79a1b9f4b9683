#version 450
// x = x * v (SOFTCAP = 0: Gemma's embedding scale) or x = v * tanh(x / v) (SOFTCAP = 1: Gemma 2's
// final logit soft-capping) over `rows` rows of n values, `stride` apart.
#include "extensions.glsl"
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint SOFTCAP = 0;

layout(std430, binding = 0) buffer S { float s[]; };

layout(push_constant) uniform Push { uint off, stride, n, rows; float v; } p;

void main() {
  const uint i = group_index() * WG + gl_LocalInvocationID.x;
  if (i >= p.n * p.rows) return;
  const uint at = p.off + (i / p.n) * p.stride + i % p.n;
  const float x = s[at];
  s[at] = SOFTCAP != 0u ? p.v * tanh(x / p.v) : x * p.v;
}
