// Shared by the attention kernels: bindings, push constants and the query in shared memory.
// One workgroup per (token, head) of the dispatch; head h reads kv head h / group. Scratch holds the rotated q
// of token t at q_off + t * q_row (n_head*hd values) and receives the attention rows
// [n_tokens][n_head*hd] at a_off.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint KV_TYPE = 0;  // 0 F32, 1 F16, 2 Q8_0

#define MAXHD 256u

layout(std430, binding = 0) buffer Scratch { float sbuf[]; };
layout(std430, binding = 1) readonly buffer Ints { int ints[]; };
layout(std430, binding = 2) readonly buffer KC { uint kc[]; };
layout(std430, binding = 3) readonly buffer VC { uint vc[]; };

layout(push_constant) uniform Push {
  uint q_off, q_row, a_off, s_off, cap;  // s_off, cap: score rows (dense only)
  uint t0, n_tokens, n_head, group, hd;  // this dispatch: tokens t0 .. t0 + n_tokens - 1
  uint pos_off, start_off, tables_off, bt;  // step data: positions, table start per token, tables
  uint kc_off, vc_off, nb1, nb2;
  uint nb3;
  float scale, softcap;  // softcap > 0: a score s becomes softcap * tanh(s / softcap) (Gemma 2)
  uint window;           // > 0: a sliding window, keys pos - window + 1 .. pos
} p_;

float capped(float s) { return p_.softcap > 0.0 ? p_.softcap * tanh(s / p_.softcap) : s; }
// The first key a query at `pos` reads.
uint first_key(uint pos) { return p_.window > 0u && pos >= p_.window ? pos + 1u - p_.window : 0u; }

shared float qs[MAXHD];

#include "reduce.glsl"
#include "kv.glsl"

// Writes attention output dim d of (t, h), given each invocation's partial `acc` for dims
// d0 + tid % D over its share of positions (D = min(hd, WG) dims at a time, WG / D shares).
void finish_dims(uint ob, uint d0, uint D, float acc, float inv_sum) {
  const uint tid = gl_LocalInvocationID.x;
  const uint G = WG / D;
  barrier();
  red[tid] = acc;
  barrier();
  if (tid < D && d0 + tid < p_.hd) {
    float o = 0.0;
    for (uint g = 0u; g < G; ++g) o += red[g * D + tid];
    sbuf[ob + d0 + tid] = o * inv_sum;
  }
}
