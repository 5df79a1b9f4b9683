#version 450
// ffn/moe's routing of a step, in one workgroup (so no step ever waits on the host):
//  1. per token t (an invocation each, in turn): the n_used largest router logits (equal ones:
//     the lower expert index first; softmax is monotonic, so this is the order of the
//     probabilities) into ids[t * n_used + k], and their probabilities renormalised over the
//     chosen, exp(l_k - l_top) / sum, into weights (float bits); with all_experts the sum runs
//     over every expert instead: the softmax's own probabilities (Jamba);
//  2. per expert e: how many slots chose it (counts[e]) and where its run starts (offsets[e],
//     the counts of the experts before it);
//  3. per expert: its slots in increasing order into lists[offsets[e] ...], so the tiled
//     expert-indexed products find each expert's rows (a counting sort, as the cpu stage does).
// A pass reads only what the passes before it wrote, behind a barrier.
#include "extensions.glsl"
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, binding = 0) readonly buffer Scratch { float sbuf[]; };  // logits [n_tokens][n_expert]
layout(std430, binding = 1) coherent buffer Route { uint route[]; };

layout(push_constant) uniform Push {
  uint logits_off, n_tokens, n_expert, n_used;
  uint ids_off, w_off, cnt_off, ofs_off, list_off, all_experts;
} p;

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint slots = p.n_tokens * p.n_used;
  for (uint t = tid; t < p.n_tokens; t += WG) {
    const uint lb = p.logits_off + t * p.n_expert, ib = p.ids_off + t * p.n_used;
    for (uint k = 0u; k < p.n_used; ++k) {
      // The largest logit not chosen yet; scanning upwards with '>' keeps the lowest of equal ones.
      uint best = 0xffffffffu;
      for (uint e = 0u; e < p.n_expert; ++e) {
        bool taken = false;
        for (uint c = 0u; c < k; ++c) taken = taken || route[ib + c] == e;
        if (!taken && (best == 0xffffffffu || sbuf[lb + e] > sbuf[lb + best])) best = e;
      }
      route[ib + k] = best;
    }
    const float top = sbuf[lb + route[ib]];
    float sum = 0.0;
    if (p.all_experts != 0u)
      for (uint e = 0u; e < p.n_expert; ++e) sum += exp(sbuf[lb + e] - top);
    else
      for (uint k = 0u; k < p.n_used; ++k) sum += exp(sbuf[lb + route[ib + k]] - top);
    for (uint k = 0u; k < p.n_used; ++k)
      route[p.w_off + t * p.n_used + k] = floatBitsToUint(exp(sbuf[lb + route[ib + k]] - top) / sum);
  }
  memoryBarrierBuffer();
  barrier();

  for (uint e = tid; e < p.n_expert; e += WG) {
    uint n = 0u;
    for (uint s = 0u; s < slots; ++s) n += route[p.ids_off + s] == e ? 1u : 0u;
    route[p.cnt_off + e] = n;
  }
  memoryBarrierBuffer();
  barrier();

  for (uint e = tid; e < p.n_expert; e += WG) {
    uint at = 0u;
    for (uint f = 0u; f < e; ++f) at += route[p.cnt_off + f];
    route[p.ofs_off + e] = at;
    for (uint s = 0u; s < slots; ++s)
      if (route[p.ids_off + s] == e) route[p.list_off + at++] = s;
  }
}
