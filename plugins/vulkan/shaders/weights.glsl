// Reading weights of any dtype from a buffer of 32-bit words named `wdata`, with DTYPE a
// specialisation constant. Rows start at a byte offset `rb` (4-aligned for F32, 2-aligned
// otherwise: Q8_0 and Q4_0 blocks are 34 and 18 bytes, so blocks sit on 2-byte boundaries).
//   Q8_0 block: f16 d, int8 q[32]            value = d * q[i]
//   Q4_0 block: f16 d, uint8 q[16]           value = d * (nibble - 8); weight i < 16 in the low
//                                            nibble of q[i], weight i + 16 in its high nibble

uint w_u16(uint b) {
  const uint v = wdata[b >> 2];
  return (b & 2u) != 0u ? (v >> 16) : (v & 0xffffu);
}

uint w_u8(uint b) { return (wdata[b >> 2] >> ((b & 3u) * 8u)) & 0xffu; }

// Four bytes starting at an even byte offset.
uint w_u32_even(uint b) {
  const uint i = b >> 2;
  if ((b & 2u) == 0u) return wdata[i];
  return (wdata[i] >> 16) | (wdata[i + 1u] << 16);
}

float half_bits(uint h) { return unpackHalf2x16(h).x; }

// Element k of the row at byte offset rb.
float weight_at(uint rb, uint k) {
  if (DTYPE == DT_F32) return uintBitsToFloat(wdata[(rb >> 2) + k]);
  if (DTYPE == DT_F16) return half_bits(w_u16(rb + 2u * k));
  if (DTYPE == DT_BF16) return uintBitsToFloat(w_u16(rb + 2u * k) << 16);
  const uint blk = k >> 5, i = k & 31u;
  if (DTYPE == DT_Q8_0) {
    const uint bo = rb + 34u * blk;
    return half_bits(w_u16(bo)) * float(bitfieldExtract(int(w_u8(bo + 2u + i)), 0, 8));
  }
  const uint bo = rb + 18u * blk;
  const uint q = w_u8(bo + 2u + (i & 15u));
  return half_bits(w_u16(bo)) * (float(i < 16u ? (q & 15u) : (q >> 4)) - 8.0);
}

// Block-quantised rows are read in units of 8 weights, four units per 32-weight block:
// unit u = 4 * block + quarter. Q8_0 unit: weights 8*quarter .. +7 of the block; Q4_0 unit: the
// low and high nibbles of bytes 4*quarter .. +3, i.e. weights 4*quarter .. +3 and 16 + 4*quarter
// .. +3. unit_weights gives them as two vec4s, lo and hi; unit_elem(u, j) is the position in the
// row of weight j (lo[0..3], then hi[0..3]), and unit_x4 the vec4 index (in a row of vec4s) of
// the four activations each half meets.
uint unit_elem(uint u, uint j) {
  if (DTYPE == DT_Q8_0) return 8u * u + j;
  const uint base = 32u * (u >> 2) + 4u * (u & 3u);
  return j < 4u ? base + j : base + 12u + j;
}

uvec2 unit_x4(uint u) {
  if (DTYPE == DT_Q8_0) return uvec2(2u * u, 2u * u + 1u);
  const uint base = 8u * (u >> 2) + (u & 3u);
  return uvec2(base, base + 4u);
}

void unit_weights(uint rb, uint u, out vec4 lo, out vec4 hi) {
  const uint blk = u >> 2, quarter = u & 3u;
  if (DTYPE == DT_Q8_0) {
    const uint bo = rb + 34u * blk;
    const float d = half_bits(w_u16(bo));
    const ivec4 q0 = ivec4(w_u32_even(bo + 2u + 8u * quarter)), q1 = ivec4(w_u32_even(bo + 6u + 8u * quarter));
    const ivec4 shift = ivec4(24, 16, 8, 0);
    lo = d * vec4((q0 << shift) >> 24);
    hi = d * vec4((q1 << shift) >> 24);
  } else {
    const uint bo = rb + 18u * blk;
    const float d = half_bits(w_u16(bo));
    const uvec4 q = uvec4(w_u32_even(bo + 2u + 4u * quarter)) >> uvec4(0u, 8u, 16u, 24u);
    lo = d * (vec4(q & 15u) - 8.0);
    hi = d * (vec4((q >> 4) & 15u) - 8.0);
  }
}

bool block_quantized() { return DTYPE == DT_Q8_0 || DTYPE == DT_Q4_0; }
