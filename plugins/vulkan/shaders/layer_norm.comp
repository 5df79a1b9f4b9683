#version 450
// y = (x - mean) / sqrt(var + eps) * w + b, one workgroup per row, w and b one F32 vector [w | b]
// (b zeros when the model has no shift). Two passes over the row, so a mean large next to the
// spread costs no precision (E[x^2] - mean^2 would cancel): the first sums x for a mean m, the
// second sums d = x - m and d^2, which corrects both for the rounding of m (the corrected
// two-pass algorithm): mean = m + sum(d) / n, var = sum(d^2) / n - (sum(d) / n)^2.
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
  const uint xb = p.x_off + r * p.x_stride, yb = p.y_off + r * p.y_stride, bb = p.w_off + p.n;
  float s = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) s += x[xb + i];
  const float m = wg_sum(s) / float(p.n);
  float sd = 0.0, ss = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
    const float d = x[xb + i] - m;
    sd += d;
    ss += d * d;
  }
  const float shift = wg_sum(sd) / float(p.n);
  const float mean = m + shift;
  const float scale = 1.0 / sqrt(max(wg_sum(ss) / float(p.n) - shift * shift, 0.0) + p.eps);
  for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
    const float v = (x[xb + i] - mean) * scale * w[p.w_off + i] + w[bb + i];
    y[yb + i] = ADD != 0u ? y[yb + i] + v : v;
  }
}
