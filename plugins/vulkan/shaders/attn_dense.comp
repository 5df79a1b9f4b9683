#version 450
// attention/dense: the full row of scores over positions first_key(pos)..pos goes to scratch
// (score rows of `cap` values), then its softmax, then the weighted sum of the values.
#include "extensions.glsl"
#include "common.glsl"
#include "attention.glsl"

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

  const uint sb = p_.s_off + gid * p_.cap;
  const uint lo = first_key(pos);
  float mx = neg_inf();
  for (uint q = lo + tid; q <= pos; q += WG) {
    const float s = capped(p_.scale * q_dot_k(p_.kc_off + cache_row(start, q, g), hd));
    sbuf[sb + q] = s;
    mx = max(mx, s);
  }
  mx = wg_max(mx);
  float sum = 0.0;
  for (uint q = lo + tid; q <= pos; q += WG) {
    const float e = exp(sbuf[sb + q] - mx);
    sbuf[sb + q] = e;
    sum += e;
  }
  sum = wg_sum(sum);
  memoryBarrierBuffer();
  barrier();

  const uint D = min(hd, WG), G = WG / D, share = tid / D;
  const uint ob = p_.a_off + t * p_.n_head * hd + h * hd;
  for (uint d0 = 0u; d0 < hd; d0 += D) {
    const uint d = d0 + tid % D;
    float acc = 0.0;
    if (share < G && d < hd)
      for (uint q = lo + share; q <= pos; q += G) acc += sbuf[sb + q] * v_at(p_.vc_off + cache_row(start, q, g) + d);
    finish_dims(ob, d0, D, acc, 1.0 / sum);
  }
}
