// The push constants and extra bindings of the linear maps: y[r][j] (+)= sum_k x[r][k] * W[j][k]
// (+ bias[j]), W stored [n_out][n_in] in DTYPE at byte offset w_off, rows w_row bytes apart; x
// and y in words. aligned: x rows start on 4 words and, for F32, F16 and BF16, weight rows
// start on 16 bytes and hold a whole number of 16-byte pieces (the matrix-vector kernel then
// reads 16 bytes at a time). has_bias: bias[b_off + j] (F32, binding 3) is added to every row.
//
// Expert-indexed products (ID = 1, llama.cpp's mul_mat_id): W is a stack of matrices w_expert
// bytes apart, and the rows are the (token, chosen expert) slots of ffn/moe's routing (binding
// 4, written by moe_route.comp). Slot s = t * n_used + k computes output row s with the matrix
// of expert route[ids_off + s] from input row s / x_div (x_div = n_used: the token's row; 1: the
// slot's own row). The tiled kernel takes the slots grouped by expert: expert e owns the
// route[cnt_off + e] slots listed at route[list_off + route[ofs_off + e] ...], and the grid's y
// is e * row_tiles + the tile of those rows. m: rows (ID = 0) or slots (ID = 1).
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
layout(std430, binding = 4) readonly buffer Route { uint route[]; };

layout(push_constant) uniform Push {
  uint w_off, w_row, n_in, n_out;
  uint x_off, x_stride, y_off, y_stride;
  uint m, accumulate, aligned, has_bias;
  uint b_off, w_expert, x_div, row_tiles;
  uint ids_off, cnt_off, ofs_off, list_off;
} p;

// The value an output element gets: the sum, the bias, and what y held when accumulating.
float linear_out(uint yi, uint j, float s) {
  if (p.has_bias != 0u) s += bias[p.b_off + j];
  return p.accumulate != 0u ? y[yi] + s : s;
}
