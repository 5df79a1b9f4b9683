// The push constants of the linear maps: y[r][j] (+)= sum_k x[r][k] * W[j][k], W stored
// [n_out][n_in] in DTYPE at byte offset w_off, rows w_row bytes apart; x and y in words.
// aligned: x rows start on 4 words and, for F32, F16 and BF16, weight rows start on 16 bytes
// and hold a whole number of 16-byte pieces (the matrix-vector kernel then reads 16 bytes at a
// time).
layout(push_constant) uniform Push {
  uint w_off, w_row, n_in, n_out;
  uint x_off, x_stride, y_off, y_stride;
  uint m, accumulate, aligned;
} p;
