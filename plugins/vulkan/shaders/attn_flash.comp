#version 450
// attention/flash: keys in tiles of TILE positions with an online softmax: each tile's scores
// stay in shared memory, the running maximum rescales what was summed so far.
#include "extensions.glsl"
#include "common.glsl"
#include "attention.glsl"

layout(constant_id = 2) const uint TILE = 64;
shared float tile[TILE];

#define NCH 2u  // dim chunks per invocation: hd <= NCH * WG

void main() {
  const uint gid = group_index();
  if (gid >= p_.n_tokens * p_.n_head) return;
  const uint tid = gl_LocalInvocationID.x;
  const uint t = p_.t0 + gid / p_.n_head, h = gid % p_.n_head, g = h / p_.group, hd = p_.hd;
  const uint pos = uint(ints[p_.pos_off + t]);
  const uint start = uint(ints[p_.start_off + t]);
  const uint qb = p_.q_off + t * p_.q_row + h * hd;
  for (uint d = tid; d < hd; d += WG) qs[d] = sbuf[qb + d];
  barrier();

  const uint D = min(hd, WG), G = WG / D, share = tid / D;
  float m = neg_inf(), l = 0.0;
  float acc[NCH];
  [[unroll]] for (uint c = 0u; c < NCH; ++c) acc[c] = 0.0;

  for (uint j0 = first_key(pos); j0 <= pos; j0 += TILE) {
    const uint n = min(TILE, pos + 1u - j0);
    float tmax = neg_inf();
    for (uint i = tid; i < n; i += WG) {
      const float s = capped(p_.scale * q_dot_k(p_.kc_off + cache_row(start, j0 + i, g), hd));
      tile[i] = s;
      tmax = max(tmax, s);
    }
    tmax = wg_max(tmax);
    const float mnew = max(m, tmax);
    const float alpha = m == neg_inf() ? 0.0 : exp(m - mnew);
    float ts = 0.0;
    for (uint i = tid; i < n; i += WG) {
      const float e = exp(tile[i] - mnew);
      tile[i] = e;
      ts += e;
    }
    ts = wg_sum(ts);
    l = l * alpha + ts;
    m = mnew;
    [[unroll]] for (uint c = 0u; c < NCH; ++c) {
      const uint d = c * D + tid % D;
      acc[c] *= alpha;
      if (share < G && d < hd)
        for (uint i = share; i < n; i += G)
          acc[c] += tile[i] * v_at(p_.vc_off + cache_row(start, j0 + i, g) + d);
    }
    barrier();
  }

  const uint ob = p_.a_off + t * p_.n_head * hd + h * hd;
  [[unroll]] for (uint c = 0u; c < NCH; ++c)
    if (c * D < hd) finish_dims(ob, c * D, D, acc[c], 1.0 / l);
}
