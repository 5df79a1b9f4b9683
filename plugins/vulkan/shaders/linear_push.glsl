// The push constants and extra bindings of the linear maps: y[r][j] (+)= sum_k x[r][k] * W[j][k]
// (+ bias[j]), W stored [n_out][n_in] in DTYPE at byte offset w_off, rows w_row bytes apart; x
// and y in words. aligned: x rows start on 4 words and, for F32, F16 and BF16, weight rows
// start on 16 bytes and hold a whole number of 16-byte pieces (the matrix-vector kernel then
// reads 16 bytes at a time). has_bias: bias[b_off + j] (F32, binding 3) is added to every row.
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };

layout(push_constant) uniform Push {
  uint w_off, w_row, n_in, n_out;
  uint x_off, x_stride, y_off, y_stride;
  uint m, accumulate, aligned, has_bias;
  uint b_off;
} p;

// The value an output element gets: the sum, the bias, and what y held when accumulating.
float linear_out(uint yi, uint j, float s) {
  if (p.has_bias != 0u) s += bias[p.b_off + j];
  return p.accumulate != 0u ? y[yi] + s : s;
}
