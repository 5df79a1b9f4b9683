#version 450
// y = x / sqrt(mean(x^2) + eps) * w (y += it with ADD), one workgroup per row.
#include "extensions.glsl"
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint ADD = 0;  // 1: y += the normed row (a post norm into the residual stream)

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uint x_off, x_stride, y_off, y_stride, w_off, n, rows;
  float eps;
} p;

#include "reduce.glsl"

void main() {
  const uint r = group_index();
  if (r >= p.rows) return;
  const uint xb = p.x_off + r * p.x_stride, yb = p.y_off + r * p.y_stride;
  float ss = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) ss += x[xb + i] * x[xb + i];
  ss = wg_sum(ss);
  const float scale = 1.0 / sqrt(ss / float(p.n) + p.eps);
  for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
    const float v = (x[xb + i] * scale) * w[p.w_off + i];
    y[yb + i] = ADD != 0u ? y[yb + i] + v : v;
  }
}
