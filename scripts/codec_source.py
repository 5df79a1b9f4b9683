#!/usr/bin/env python3
"""Writes the F32 source of the weight-codec known answers (models/codec/source-f32.gguf).

A one-layer llama of width 32 (every row one Q8_0/Q4_0 block), enough metadata for
llama-quantize to take it, and tensors whose rows are chosen to reach the corners of the codecs:
ordinary rows at several scales, zeros, a lone value, exact rounding ties of Q8_0 and of Q4_0's
offset, the value of largest magnitude negative or positive (and both at once), scales whose F16
is subnormal or near the F16 maximum, and values halfway between two F16 or two BF16 numbers.
Nothing converts to inf in F16 (llama-quantize refuses such a tensor); the extremes of the
conversions themselves (inf, NaN, overflow) are known encodings in the test.
Written with the standard library only (struct), independently of semline's GGUF writer.

usage: codec_source.py OUT.gguf
"""
import math
import random
import struct
import sys

WIDTH = 32  # one block per row
ROWS = 32

def gauss_row(rng, scale):
    return [rng.gauss(0.0, scale) for _ in range(WIDTH)]

def chosen_rows(rng):
    """Rows of the corner cases, in a fixed order; the rest are ordinary rows."""
    rows = []
    rows.append([0.0] * WIDTH)                                    # all zero: d = 0
    lone = [0.0] * WIDTH; lone[5] = -0.75; rows.append(lone)      # one value
    # Q8_0 ties: amax = 127 * 2^k, so d = 2^k exactly and x / d = j + 0.5 exactly.
    for k in (-3, 0, 4):
        d = 2.0 ** k
        r = [((j % 16) - 7.5) * d for j in range(WIDTH - 1)] + [127 * d]
        rows.append(r)
        rows.append([-v for v in r])
    # Q4_0: the value of largest magnitude decides the sign of d; on equal magnitudes the first wins.
    r = gauss_row(rng, 1.0); r[3] = 4.0; r[20] = -4.0; rows.append(r)
    r = gauss_row(rng, 1.0); r[3] = -4.0; r[20] = 4.0; rows.append(r)
    # Q4_0 offsets on exact integers: max = -8 gives d = 1, x + 8.5 lands on .0 for x = k + 0.5.
    rows.append([-8.0] + [((j % 17) - 8) + 0.5 for j in range(WIDTH - 1)])
    rows.append([8.0] + [((j % 17) - 8) + 0.5 for j in range(WIDTH - 1)])
    # Scales at the ends of F16: subnormal d, and d near 65504 / 127.
    rows.append(gauss_row(rng, 1e-6))
    rows.append(gauss_row(rng, 2e-8))
    rows.append([rng.uniform(-65000.0, 65000.0) for _ in range(WIDTH)])
    # Halfway between two F16 numbers (normal and subnormal) and between two BF16 numbers.
    f16_ties = [1 + 2 ** -11, 1 + 3 * 2 ** -11, -(2 + 2 ** -10), 2 ** -25, 3 * 2 ** -25, 2 ** -14 + 2 ** -25,
                1024 + 0.5, 1024 + 1.5, 65504.0, 65519.0, -(2 ** -24), 6e-8]
    rows.append((f16_ties * 3)[:WIDTH])
    # (within F16's range: llama-quantize refuses a tensor that converts to inf, F16 or a Q scale)
    bf16_ties = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 2 ** -127 + 2 ** -135, 1e-40, 256 + 1, 256 + 3,
                 -(2 ** 15) * (1 + 2 ** -8), 2 ** -20 * (1 + 3 * 2 ** -8)]
    rows.append((bf16_ties * 4)[:WIDTH])
    return rows

def tensor_rows(rng, chosen, n_rows):
    rows = []
    scales = (1.0, 0.02, 1e-3, 30.0)
    while len(rows) < n_rows:
        if chosen:
            rows.append(chosen.pop(0))
        else:
            rows.append(gauss_row(rng, scales[len(rows) % len(scales)]))
    return rows

def f32(v):
    return struct.pack("<f", v)

def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b

def main():
    out = sys.argv[1]
    rng = random.Random(20261203)
    chosen = chosen_rows(rng)
    names = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
             "blk.0.attn_output.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight",
             "output.weight"]
    tensors = []  # (name, dims innermost first, bytes)
    for name in names:
        rows = tensor_rows(rng, chosen, ROWS)
        tensors.append((name, [WIDTH, ROWS], b"".join(f32(v) for r in rows for v in r)))
    for name in ("blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "output_norm.weight"):
        tensors.append((name, [WIDTH], b"".join(f32(1.0 + 0.1 * rng.uniform(-1, 1)) for _ in range(WIDTH))))
    assert not chosen, "every chosen row has a tensor"

    U32, F32, STRING = 4, 6, 8
    meta = [("general.architecture", STRING, "llama"), ("general.name", STRING, "codec known answers"),
            ("llama.vocab_size", U32, ROWS), ("llama.context_length", U32, 64), ("llama.embedding_length", U32, WIDTH),
            ("llama.block_count", U32, 1), ("llama.feed_forward_length", U32, ROWS),
            ("llama.attention.head_count", U32, 2), ("llama.attention.head_count_kv", U32, 2),
            ("llama.rope.dimension_count", U32, WIDTH // 2), ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
            ("general.alignment", U32, 32)]
    body = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)))
    for key, kind, value in meta:
        body += gguf_string(key) + struct.pack("<I", kind)
        body += gguf_string(value) if kind == STRING else struct.pack("<I" if kind == U32 else "<f", value)
    offset = 0
    for name, dims, data in tensors:
        body += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        body += struct.pack("<IQ", 0, offset)  # type 0: F32
        offset += (len(data) + 31) // 32 * 32
    body += b"\0" * (-len(body) % 32)
    for _, _, data in tensors:
        body += data + b"\0" * (-len(data) % 32)
    with open(out, "wb") as f:
        f.write(body)

if __name__ == "__main__":
    main()
