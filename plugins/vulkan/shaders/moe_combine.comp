#version 450
// ffn/moe's last step: y[t] += sum_k w[t][k] d[t * n_used + k] over the token's chosen experts,
// k in rank order (so the sum is the same whichever kernel computed the expert rows d).
#include "extensions.glsl"
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

layout(std430, binding = 0) readonly buffer Scratch { float sbuf[]; };  // d [n_tokens * n_used][n]
layout(std430, binding = 1) readonly buffer Route { uint route[]; };  // weights at w_off, float bits
layout(std430, binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uint d_off, w_off, y_off, y_stride, n, n_tokens, n_used;
} p;

void main() {
  const uint i = group_index() * WG + gl_LocalInvocationID.x;
  if (i >= p.n_tokens * p.n) return;
  const uint t = i / p.n, j = i % p.n;
  float acc = 0.0;
  for (uint k = 0u; k < p.n_used; ++k) {
    const uint s = t * p.n_used + k;
    acc += uintBitsToFloat(route[p.w_off + s]) * sbuf[p.d_off + s * p.n + j];
  }
  y[p.y_off + t * p.y_stride + j] += acc;
}
