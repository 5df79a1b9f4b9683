#version 450
// Matrix-vector products for up to MAXM activation rows (decode and small batches; MAXM is a
// specialisation constant so decode gets a variant with one accumulator per row): each
// workgroup takes NR weight rows, its invocations stride along them, and the partial sums of all
// NR x m outputs are reduced at once (subgroups, else a shared-memory tree). Rows that are
// 16-byte aligned (p.aligned) are read 16 bytes at a time where the dtype allows. Expert-indexed
// (ID = 1, MAXM = 1): workgroup g computes weight rows of slot g / (row groups) with the matrix
// of the slot's expert, so a decode step's experts are found on the device.
#include "extensions.glsl"
#include "common.glsl"

#define NR 2u

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint DTYPE = DT_F32;
layout(constant_id = 2) const uint MAXM = 8;
layout(constant_id = 3) const uint ID = 0;
const uint NV = NR * MAXM;

layout(std430, binding = 0) readonly buffer Wt { uint wdata[]; };
layout(std430, binding = 0) readonly buffer Wt4 { uvec4 wdata4[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 2) buffer Y { float y[]; };

#include "linear_push.glsl"
#include "weights.glsl"

shared float part[NV * WG];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint row_groups = (p.n_out + NR - 1u) / NR;
  const uint gi = group_index();
  const uint slot = ID != 0u ? gi / row_groups : 0u;
  const uint j0 = (gi - slot * row_groups) * NR;
  if (j0 >= p.n_out || (ID != 0u && slot >= p.m)) return;
  // Where this workgroup's matrix and rows start, and how many rows it takes.
  const uint m = ID != 0u ? 1u : p.m;
  const uint w0 = ID != 0u ? p.w_off + route[p.ids_off + slot] * p.w_expert : p.w_off;
  const uint x0 = ID != 0u ? p.x_off + (slot / p.x_div) * p.x_stride : p.x_off;
  const uint y0 = ID != 0u ? p.y_off + slot * p.y_stride : p.y_off;
  float acc[NV];
  [[unroll]] for (uint v = 0u; v < NV; ++v) acc[v] = 0.0;

  [[unroll]] for (uint jr = 0u; jr < NR; ++jr) {
    const uint j = j0 + jr;
    if (j >= p.n_out) break;
    const uint rb = w0 + j * p.w_row;
    if (block_quantized()) {
      const uint units = p.n_in >> 3;
      for (uint u = tid; u < units; u += WG) {
        vec4 lo, hi;
        unit_weights(rb, u, lo, hi);
        const uvec2 at = unit_x4(u);
        [[unroll]] for (uint r = 0u; r < MAXM; ++r) {
          if (r >= m) break;
          float s;
          if (p.aligned != 0u) {
            const uint xb = (x0 + r * p.x_stride) / 4u;
            s = dot(lo, x4[xb + at.x]) + dot(hi, x4[xb + at.y]);
          } else {
            const uint xb = x0 + r * p.x_stride;
            s = 0.0;
            [[unroll]] for (uint e = 0u; e < 4u; ++e)
              s += lo[e] * x[xb + unit_elem(u, e)] + hi[e] * x[xb + unit_elem(u, e + 4u)];
          }
          acc[jr * MAXM + r] += s;
        }
      }
    } else if (DTYPE == DT_F32 && p.aligned != 0u) {
      for (uint k = tid; k < p.n_in / 4u; k += WG) {
        const vec4 w = uintBitsToFloat(wdata4[rb / 16u + k]);
        [[unroll]] for (uint r = 0u; r < MAXM; ++r) {
          if (r >= m) break;
          acc[jr * MAXM + r] += dot(w, x4[(x0 + r * p.x_stride) / 4u + k]);
        }
      }
    } else if ((DTYPE == DT_F16 || DTYPE == DT_BF16) && p.aligned != 0u) {
      for (uint k = tid; k < p.n_in / 8u; k += WG) {
        const uvec4 q = wdata4[rb / 16u + k];
        vec4 lo, hi;
        if (DTYPE == DT_F16) {
          lo = vec4(unpackHalf2x16(q.x), unpackHalf2x16(q.y));
          hi = vec4(unpackHalf2x16(q.z), unpackHalf2x16(q.w));
        } else {
          lo = uintBitsToFloat(uvec4(q.x << 16, q.x & 0xffff0000u, q.y << 16, q.y & 0xffff0000u));
          hi = uintBitsToFloat(uvec4(q.z << 16, q.z & 0xffff0000u, q.w << 16, q.w & 0xffff0000u));
        }
        [[unroll]] for (uint r = 0u; r < MAXM; ++r) {
          if (r >= m) break;
          const uint xb = (x0 + r * p.x_stride) / 4u + 2u * k;
          acc[jr * MAXM + r] += dot(lo, x4[xb]) + dot(hi, x4[xb + 1u]);
        }
      }
    } else {
      for (uint k = tid; k < p.n_in; k += WG) {
        const float w = weight_at(rb, k);
        [[unroll]] for (uint r = 0u; r < MAXM; ++r) {
          if (r >= m) break;
          acc[jr * MAXM + r] += w * x[x0 + r * p.x_stride + k];
        }
      }
    }
  }

#ifdef USE_SUBGROUPS
  [[unroll]] for (uint v = 0u; v < NV; ++v) {
    if (v % MAXM < m) {
      const float s = subgroupAdd(acc[v]);
      if (subgroupElect()) part[v * WG + gl_SubgroupID] = s;
    }
  }
  barrier();
  const uint nparts = gl_NumSubgroups;
#else
  [[unroll]] for (uint v = 0u; v < NV; ++v) part[v * WG + tid] = acc[v];
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s)
      for (uint v = 0u; v < NV; ++v)
        if (v % MAXM < m) part[v * WG + tid] += part[v * WG + tid + s];
    barrier();
  }
  const uint nparts = 1u;
#endif

  if (tid < NV) {
    const uint r = tid % MAXM, j = j0 + tid / MAXM;
    if (r < m && j < p.n_out) {
      float s = 0.0;
      for (uint i = 0u; i < nparts; ++i) s += part[tid * WG + i];
      const uint yi = y0 + r * p.y_stride + j;
      y[yi] = linear_out(yi, j, s);
    }
  }
}
