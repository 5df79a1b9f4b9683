#version 450
// A Mamba mixer's selective scan (stations/ssm.h, ssm_scan): one invocation per channel c, the
// step's tokens in batch order (each sequence's in position order), the channel's d_state values
// of the state row slots[t]; a token at position 0 starts its sequence from zeros. Mamba-1
// (N_HEAD 0): dt, A per channel and state; Mamba-2: head e = c / (d_inner / n_head) has one dt
// and one scalar A, its group g = e / (n_head / n_group) one B and C.
//   delta = softplus(dt + dt_bias), h = h exp(delta a) + delta b x, y = (h . c + d x) silu(z)
#include "extensions.glsl"
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, binding = 0) buffer Scratch { float sbuf[]; };  // x, dt, b, c, z and y rows
layout(std430, binding = 1) readonly buffer Ints { int ints[]; };
layout(std430, binding = 2) buffer State { float st[]; };      // [slot][d_inner][d_state]
layout(std430, binding = 3) readonly buffer W { float w[]; };   // a, d [d_inner], dt_bias (Mamba-2)

layout(push_constant) uniform Push {
  uint x_off, x_stride, dt_off, dt_stride;
  uint b_off, b_stride, c_off, c_stride;
  uint z_off, z_stride, y_off, y_stride;
  uint n_tokens, d_inner, d_state, n_head;
  uint n_group, pos_off, slot_off, st_off;
  uint st_row, a_off, d_off, dtb_off;
} p;

float softplus(float v) { return v > 20.0 ? v : log(1.0 + exp(v)); }

void main() {
  const uint c = group_index() * WG + gl_LocalInvocationID.x;
  if (c >= p.d_inner) return;
  const bool v2 = p.n_head > 0u;
  const uint e = v2 ? c / (p.d_inner / p.n_head) : c;
  const uint g = v2 ? e / (p.n_head / p.n_group) : 0u;
  const uint ds = p.d_state;
  for (uint t = 0u; t < p.n_tokens; ++t) {
    const uint row = p.st_off + uint(ints[p.slot_off + t]) * p.st_row + c * ds;
    if (ints[p.pos_off + t] == 0)
      for (uint n = 0u; n < ds; ++n) st[row + n] = 0.0;
    float dt = sbuf[p.dt_off + t * p.dt_stride + e];
    if (v2) dt += w[p.dtb_off + e];
    const float delta = softplus(dt), x = sbuf[p.x_off + t * p.x_stride + c];
    const float dx = delta * x, decay = v2 ? exp(delta * w[p.a_off + e]) : 0.0;
    const uint bb = p.b_off + t * p.b_stride + g * ds, cb = p.c_off + t * p.c_stride + g * ds;
    float acc = 0.0;
    for (uint n = 0u; n < ds; ++n) {
      const float a = v2 ? decay : exp(delta * w[p.a_off + c * ds + n]);
      const float h = st[row + n] * a + sbuf[bb + n] * dx;
      st[row + n] = h;
      acc += h * sbuf[cb + n];
    }
    const float z = sbuf[p.z_off + t * p.z_stride + c];
    sbuf[p.y_off + t * p.y_stride + c] = (acc + w[p.d_off + c] * x) * (z / (1.0 + exp(-z)));
  }
}
