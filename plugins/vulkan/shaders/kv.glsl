// Reading the paged KV cache (F32, F16 or Q8_0: KV_TYPE 0, 1, 2, a specialisation constant) from
// word buffers `kc` and `vc`, with value offsets. A position p of a token's sequence lives in
// cache block tables[start + p / bt], slot p % bt; kv head g of it at kc_off + block*nb3 +
// slot*nb2 + g*nb1. Q8_0 (ggml's blocks): value e lies at byte e / 32 * 34 + 2 + e % 32, after its
// block's F16 scale at byte e / 32 * 34.

uint cache_row(uint start, uint p, uint g) {
  const uint blk = uint(ints[p_.tables_off + start + p / p_.bt]);
  return blk * p_.nb3 + (p % p_.bt) * p_.nb2 + g * p_.nb1;
}

// The signed byte at byte offset b of word w's buffer, and the F16 at even byte offset b.
int byte_of(uint w, uint b) { return int(w << (24u - (b & 3u) * 8u)) >> 24; }
float half_of(uint w, uint b) { return unpackHalf2x16(w >> ((b & 2u) * 8u)).x; }

float v_at(uint e) {
  if (KV_TYPE == 2u) {
    const uint blk = e / 32u * 34u, b = blk + 2u + e % 32u;
    return half_of(vc[blk >> 2], blk) * float(byte_of(vc[b >> 2], b));
  }
  if (KV_TYPE == 1u) return unpackHalf2x16(vc[e >> 1])[e & 1u];
  return uintBitsToFloat(vc[e]);
}

// q (in shared qs[0..hd)) . the key row at element offset e.
float q_dot_k(uint e, uint hd) {
  float s = 0.0;
  if (KV_TYPE == 2u) {
    // A block's products summed raw, then scaled once.
    for (uint d = 0u; d < hd; d += 32u) {
      const uint blk = (e + d) / 32u * 34u;
      float part = 0.0;
      for (uint i = 0u; i < 32u; ++i) {
        const uint b = blk + 2u + i;
        part += qs[d + i] * float(byte_of(kc[b >> 2], b));
      }
      s += half_of(kc[blk >> 2], blk) * part;
    }
  } else if (KV_TYPE == 1u) {
    for (uint d = 0u; d < hd; d += 2u) {
      const vec2 k = unpackHalf2x16(kc[(e + d) >> 1]);
      s += qs[d] * k.x + qs[d + 1u] * k.y;
    }
  } else {
    for (uint d = 0u; d < hd; ++d) s += qs[d] * uintBitsToFloat(kc[e + d]);
  }
  return s;
}
