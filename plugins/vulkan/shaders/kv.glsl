// Reading the paged KV cache (F32 or F16, KV_F16 a specialisation constant) from word buffers
// `kc` and `vc`, with element offsets. A position p of a token's sequence lives in cache block
// tables[start + p / bt], slot p % bt; kv head g of it at kc_off + block*nb3 + slot*nb2 + g*nb1.

uint cache_row(uint start, uint p, uint g) {
  const uint blk = uint(ints[p_.tables_off + start + p / p_.bt]);
  return blk * p_.nb3 + (p % p_.bt) * p_.nb2 + g * p_.nb1;
}

float v_at(uint e) {
  if (KV_F16 != 0u) return unpackHalf2x16(vc[e >> 1])[e & 1u];
  return uintBitsToFloat(vc[e]);
}

// q (in shared qs[0..hd)) . the key row at element offset e.
float q_dot_k(uint e, uint hd) {
  float s = 0.0;
  if (KV_F16 != 0u) {
    for (uint d = 0u; d < hd; d += 2u) {
      const vec2 k = unpackHalf2x16(kc[(e + d) >> 1]);
      s += qs[d] * k.x + qs[d + 1u] * k.y;
    }
  } else {
    for (uint d = 0u; d < hd; ++d) s += qs[d] * uintBitsToFloat(kc[e + d]);
  }
  return s;
}
