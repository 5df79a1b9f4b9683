#version 450
// One workgroup per batch token: with QK_NORM, RMS-normalises each head of its q and k (Qwen3;
// the scales of a q head then a k head in Norm at nw_off); rotates its q and k in scratch by the
// token's position (cos/sin pairs from the step's rope table, normal or NeoX pairing; rope_dim 0:
// no rotation, as GPT-2),
// then writes its k and v into the paged cache (F32; F16 pairs packed in words; or Q8_0 rows, one
// invocation each, in whole words: ggml's quantize_row_q8_0, d = amax / 127 stored as F16 and each
// value rounded half away from zero to x / d). A token's q | k | v sit in one scratch row of `row`
// words, at q_off, k_off and v_off of row 0. Offsets into the cache count values.
#include "extensions.glsl"
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint KV_TYPE = 0;  // 0 F32, 1 F16, 2 Q8_0
layout(constant_id = 2) const uint NEOX = 0;
layout(constant_id = 3) const uint QK_NORM = 0;

layout(std430, binding = 0) buffer Scratch { float sbuf[]; };
layout(std430, binding = 1) readonly buffer Rope { float cs[]; };  // [token][rope_dim/2] (cos, sin)
layout(std430, binding = 2) readonly buffer Ints { int ints[]; };
layout(std430, binding = 3) writeonly buffer KC { uint kc[]; };
layout(std430, binding = 4) writeonly buffer VC { uint vc[]; };
layout(std430, binding = 5) readonly buffer Norm { float nw[]; };  // unread without QK_NORM

layout(push_constant) uniform Push {
  uint q_off, k_off, v_off, row, n_tokens;
  uint n_head, n_kv, hd, rope_dim;
  uint pos_off, start_off, tables_off, bt;
  uint kc_off, vc_off, nb1, nb2;
  uint nb3, nw_off;
  float eps;
} p;

// One head's row of hd values from sbuf[src..] as Q8_0 blocks at byte `byte` (a whole word: the
// host refuses head sizes that are not multiples of 64). Bytes gather in a word written whole.
#define STORE_Q8(NAME, BUF)                                                              \
  void NAME(uint byte, uint src) {                                                        \
    uint word = 0u, n = 0u, w = byte >> 2;                                               \
    for (uint blk = 0u; blk < p.hd; blk += 32u) {                                         \
      float amax = 0.0;                                                                   \
      for (uint i = 0u; i < 32u; ++i) amax = max(amax, abs(sbuf[src + blk + i]));        \
      const float d = amax / 127.0, id = d != 0.0 ? 1.0 / d : 0.0;                        \
      const uint h = packHalf2x16(vec2(d, 0.0)) & 0xffffu;                                \
      for (uint i = 0u; i < 34u; ++i) {                                                   \
        uint b;                                                                           \
        if (i < 2u) {                                                                     \
          b = (h >> (8u * i)) & 0xffu;                                                    \
        } else {                                                                          \
          const float x = sbuf[src + blk + i - 2u] * id;                                  \
          b = uint(int(sign(x) * floor(abs(x) + 0.5))) & 0xffu;                           \
        }                                                                                 \
        word |= b << (8u * (n & 3u));                                                     \
        if ((++n & 3u) == 0u) {                                                           \
          BUF[w++] = word;                                                                \
          word = 0u;                                                                      \
        }                                                                                 \
      }                                                                                   \
    }                                                                                     \
  }
STORE_Q8(store_q8_k, kc)
STORE_Q8(store_q8_v, vc)

void main() {
  const uint t = group_index();
  if (t >= p.n_tokens) return;
  const uint tid = gl_LocalInvocationID.x;
  const uint half_dim = p.rope_dim / 2u, kd = p.n_kv * p.hd;
  const uint cb = t * p.rope_dim;
  if (QK_NORM != 0u) {  // a head per invocation: heads are short, and this runs once per token
    for (uint head = tid; head < p.n_head + p.n_kv; head += WG) {
      const bool is_q = head < p.n_head;
      const uint base = t * p.row + (is_q ? p.q_off + head * p.hd : p.k_off + (head - p.n_head) * p.hd);
      const uint w = p.nw_off + (is_q ? 0u : p.hd);
      float ss = 0.0;
      for (uint d = 0u; d < p.hd; ++d) ss += sbuf[base + d] * sbuf[base + d];
      const float scale = inversesqrt(ss / float(p.hd) + p.eps);
      for (uint d = 0u; d < p.hd; ++d) sbuf[base + d] = sbuf[base + d] * scale * nw[w + d];
    }
    memoryBarrierBuffer();
    barrier();
  }
  for (uint i = tid; i < (p.n_head + p.n_kv) * half_dim; i += WG) {
    const uint head = i / half_dim, k = i % half_dim;
    const uint base = t * p.row + (head < p.n_head ? p.q_off + head * p.hd : p.k_off + (head - p.n_head) * p.hd);
    const uint a = NEOX != 0u ? base + k : base + 2u * k;
    const uint b = NEOX != 0u ? base + k + half_dim : base + 2u * k + 1u;
    const float c = cs[cb + 2u * k], s = cs[cb + 2u * k + 1u];
    const float x0 = sbuf[a], x1 = sbuf[b];
    sbuf[a] = x0 * c - x1 * s;
    sbuf[b] = x0 * s + x1 * c;
  }
  memoryBarrierBuffer();
  barrier();

  const uint pos = uint(ints[p.pos_off + t]);
  const uint blk = uint(ints[p.tables_off + uint(ints[p.start_off + t]) + pos / p.bt]);
  const uint slot = blk * p.nb3 + (pos % p.bt) * p.nb2;
  const uint kb = p.k_off + t * p.row, vb = p.v_off + t * p.row;
  if (KV_TYPE == 2u) {
    for (uint g = tid; g < p.n_kv; g += WG) {
      const uint at = slot + g * p.nb1;
      store_q8_k((p.kc_off + at) / 32u * 34u, kb + g * p.hd);
      store_q8_v((p.vc_off + at) / 32u * 34u, vb + g * p.hd);
    }
  } else if (KV_TYPE == 1u) {
    for (uint e = 2u * tid; e < kd; e += 2u * WG) {
      const uint g = e / p.hd, d = e % p.hd;
      const uint at = slot + g * p.nb1 + d;
      kc[(p.kc_off + at) >> 1] = packHalf2x16(vec2(sbuf[kb + e], sbuf[kb + e + 1u]));
      vc[(p.vc_off + at) >> 1] = packHalf2x16(vec2(sbuf[vb + e], sbuf[vb + e + 1u]));
    }
  } else {
    for (uint e = tid; e < kd; e += WG) {
      const uint g = e / p.hd, d = e % p.hd;
      const uint at = slot + g * p.nb1 + d;
      kc[p.kc_off + at] = floatBitsToUint(sbuf[kb + e]);
      vc[p.vc_off + at] = floatBitsToUint(sbuf[vb + e]);
    }
  }
}
