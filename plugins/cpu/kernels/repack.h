// Q8_0 and Q4_0 weights repacked once, at load, into the layout the AVX-512 kernels read
// (Kernels::repacked). Plain C++: the layout is a permutation of the file's bytes, so it is made,
// and checked by the tests, on any CPU.
//
// The matrix [n_out][k] is cut into tiles of kRepackRows = 16 rows (the last one padded with zero
// rows), stored one after another, repacked_tile_bytes(t, k) apart. A tile holds its rows' blocks
// in pairs (2p, 2p + 1), each pair
//
//   64 bytes of scales: the 16 F16 scales of block 2p (row 0 first), then the 16 of block 2p + 1;
//   the quants of block 2p, then those of block 2p + 1, each as G groups of 64 bytes: group g
//   holds 4 bytes per row, row l at bytes 4l..4l+3 (32-bit lane l of a 512-bit register):
//     Q8_0, G = 8: weights 4g..4g+3 of row l, each + 128 (as unsigned bytes);
//     Q4_0, G = 4: bytes 4g..4g+3 of row l's block as the file stores them: their low nibbles
//                  are weights 4g..4g+3, their high nibbles weights 16+4g..16+4g+3, each + 8.
//
// and an odd last block forms a pair alone (its 32 scale bytes, 32 zero bytes, its quants). So a
// pair is 1088 bytes (Q8_0) or 576 (Q4_0): 34 or 18 bytes per 32 weights, as in the file, and
// every group starts on a cache line. A row-range kernel reads its tiles strictly in order; one
// aligned 512-bit load of a group feeds vpdpbusd for all 16 rows as its unsigned operand (Q4_0:
// two, after masking the low and shifting down the high nibbles), the activation's 4 values
// broadcast as the signed one, and one vcvtph2ps turns a block's scales into a register whose
// lane l is row l's.
#pragma once

#include <cstddef>
#include <cstdint>

#include <semline/tensor.h>

namespace semline::cpu {

inline constexpr int64_t kRepackRows = 16;

// Bytes of one tile of rows of k values (k a multiple of 32) of dtype t (Q8_0 or Q4_0).
size_t repacked_tile_bytes(DType t, int64_t k);

// Tiles [t0, t1) of the matrix w: n_out rows of k values of dtype t in the file's blocks, rows
// w_stride bytes apart. dst holds the whole repacked matrix (tile i at i * repacked_tile_bytes);
// every byte of the tiles written is set, padding included.
void repack_tiles(DType t, const char* w, size_t w_stride, int64_t n_out, int64_t k, int64_t t0, int64_t t1,
                  char* dst);

}  // namespace semline::cpu
