#version 450
// Tiled matrix-matrix products for batches (prefill): a 64-invocation workgroup computes a
// BM x BN tile of y (activation rows x weight rows), 8 x 8 values per invocation, stepping
// through n_in in BK-wide slices staged in shared memory (weights dequantised on the way in;
// BK = 32 is one quantisation block). Expert-indexed (ID = 1): the tile's rows are up to BM
// slots of one expert (linear_push.glsl), gathered from their input rows and scattered to
// their output rows; a tile past its expert's slots returns at once, reading no weights.
#include "extensions.glsl"
#include "common.glsl"

#define BM 64u
#define BN 64u
#define BK 32u

#define WG 64u  // the 8 x 8 grid below
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint DTYPE = DT_F32;
layout(constant_id = 1) const uint ID = 0;

layout(std430, binding = 0) readonly buffer Wt { uint wdata[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) buffer Y { float y[]; };

#include "linear_push.glsl"
#include "weights.glsl"

// Tiles in shared memory as vec4s: xs[k][row / 4], ws[k][weight row / 4]. Invocation (tr, tc) of
// the 8 x 8 grid owns rows 8*tr .. +7 and weight rows 8*tc .. +7 of the output tile, so each step
// of k is four vec4 loads and sixty-four multiply-adds.
shared vec4 xs[BK * BM / 4u];
shared vec4 ws[BK * BN / 4u];
// The input and output row of each row of the tile (ID = 1).
shared uint x_rows[BM], y_rows[BM];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint n0 = gl_WorkGroupID.x * BN;
  const uint tc = tid % 8u, tr = tid / 8u;
  // The tile's first row among `rows`, and the first byte of its weight matrix.
  uint m0 = gl_WorkGroupID.y * BM, rows = p.m, w0 = p.w_off;
  if (ID != 0u) {
    const uint e = gl_WorkGroupID.y / p.row_tiles;
    m0 = (gl_WorkGroupID.y % p.row_tiles) * BM;
    rows = route[p.cnt_off + e];
    if (m0 >= rows) return;  // the whole workgroup: its expert has fewer slots
    w0 += e * p.w_expert;
    const uint first = p.list_off + route[p.ofs_off + e] + m0;
    for (uint r = tid; r < BM; r += WG) {
      const uint slot = m0 + r < rows ? route[first + r] : 0u;
      x_rows[r] = slot / p.x_div;
      y_rows[r] = slot;
    }
    barrier();
  }
  vec4 acc[8][2];
  [[unroll]] for (uint i = 0u; i < 8u; ++i) acc[i][0] = acc[i][1] = vec4(0.0);

  for (uint k0 = 0u; k0 < p.n_in; k0 += BK) {
    for (uint e = tid; e < BM * BK; e += WG) {
      const uint r = e / BK, k = e % BK, gk = k0 + k;
      const uint xr = ID != 0u ? x_rows[r] : m0 + r;
      xs[k * (BM / 4u) + r / 4u][r % 4u] = (m0 + r < rows && gk < p.n_in) ? x[p.x_off + xr * p.x_stride + gk] : 0.0;
    }
    if (block_quantized()) {
      for (uint e = tid; e < BN * 4u; e += WG) {
        const uint row = e / 4u, quarter = e % 4u, j = n0 + row;
        vec4 lo = vec4(0.0), hi = vec4(0.0);
        if (j < p.n_out) unit_weights(w0 + j * p.w_row, (k0 / 32u) * 4u + quarter, lo, hi);
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
          ws[unit_elem(quarter, i) * (BN / 4u) + row / 4u][row % 4u] = lo[i];
          ws[unit_elem(quarter, i + 4u) * (BN / 4u) + row / 4u][row % 4u] = hi[i];
        }
      }
    } else {
      for (uint e = tid; e < BN * BK; e += WG) {
        const uint row = e / BK, k = e % BK, j = n0 + row, gk = k0 + k;
        ws[k * (BN / 4u) + row / 4u][row % 4u] = (j < p.n_out && gk < p.n_in) ? weight_at(w0 + j * p.w_row, gk) : 0.0;
      }
    }
    barrier();
    for (uint k = 0u; k < BK; ++k) {
      const vec4 a0 = xs[k * (BM / 4u) + 2u * tr], a1 = xs[k * (BM / 4u) + 2u * tr + 1u];
      const vec4 b0 = ws[k * (BN / 4u) + 2u * tc], b1 = ws[k * (BN / 4u) + 2u * tc + 1u];
      [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        acc[i][0] += a0[i] * b0;
        acc[i][1] += a0[i] * b1;
        acc[i + 4u][0] += a1[i] * b0;
        acc[i + 4u][1] += a1[i] * b1;
      }
    }
    barrier();
  }

  [[unroll]] for (uint i = 0u; i < 8u; ++i) {
    const uint r = 8u * tr + i;
    if (m0 + r >= rows) continue;
    const uint yr = ID != 0u ? y_rows[r] : m0 + r;
    [[unroll]] for (uint j = 0u; j < 8u; ++j) {
      const uint c = n0 + 8u * tc + j;
      if (c >= p.n_out) continue;
      const uint yi = p.y_off + yr * p.y_stride + c;
      y[yi] = linear_out(yi, c, acc[i][j / 4u][j % 4u]);
    }
  }
}
