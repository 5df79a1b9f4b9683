#version 450
// A Mamba mixer's causal convolution (stations/ssm.h, ssm_conv): one invocation per channel c,
// the step's tokens in batch order (each sequence's in position order). Token t of the sequence in
// state row slots[t]: out = silu(bias + sum over the d_conv - 1 inputs in the row (oldest first)
// and this one, each times its tap), then the row moves on by one input. A token at position 0
// starts its sequence: its row is zeroed first. Channels are independent, so no two invocations
// touch one value of the state.
#include "extensions.glsl"
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, binding = 0) buffer Scratch { float sbuf[]; };  // u and out rows
layout(std430, binding = 1) readonly buffer Ints { int ints[]; };
layout(std430, binding = 2) buffer State { float st[]; };      // [slot][d_conv - 1][channels]
layout(std430, binding = 3) readonly buffer W { float w[]; };   // taps [d_conv][channels], bias [channels]

layout(push_constant) uniform Push {
  uint u_off, u_stride, out_off, out_stride;
  uint n_tokens, channels, d_conv, pos_off;
  uint slot_off, st_off, st_row, w_off;
} p;

void main() {
  const uint c = group_index() * WG + gl_LocalInvocationID.x;
  if (c >= p.channels) return;
  const uint keep = p.d_conv - 1u, taps = p.w_off, bias = p.w_off + p.d_conv * p.channels;
  for (uint t = 0u; t < p.n_tokens; ++t) {
    const uint row = p.st_off + uint(ints[p.slot_off + t]) * p.st_row + c;
    if (ints[p.pos_off + t] == 0)
      for (uint k = 0u; k < keep; ++k) st[row + k * p.channels] = 0.0;
    const float u = sbuf[p.u_off + t * p.u_stride + c];
    float acc = w[bias + c];
    for (uint k = 0u; k < keep; ++k) acc += w[taps + k * p.channels + c] * st[row + k * p.channels];
    acc += w[taps + keep * p.channels + c] * u;
    for (uint k = 0u; k + 1u < keep; ++k) st[row + k * p.channels] = st[row + (k + 1u) * p.channels];
    st[row + (keep - 1u) * p.channels] = u;
    sbuf[p.out_off + t * p.out_stride + c] = acc / (1.0 + exp(-acc));
  }
}
