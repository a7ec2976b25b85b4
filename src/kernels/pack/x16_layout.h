// Byte geometry of the x16 ("16 rows interleaved") layouts, as compile-time data shared by the
// packer (pack.cpp), the scalar decoder (x16_terms.cpp) and every tier's kernels.
//
// A matrix of n rows × k is cut into groups of 16 rows (the last group padded with rows whose
// scales are 0 and whose codes are the type's zero code) and, along k, into the GGUF type's
// superblocks (32 elements, or 256 for the K-quants and IQ4_XS). Group g, superblock sb
// starts at byte (g · nsb + sb) · kBytes (nsb = k / kElems): exactly 16 × the GGUF block size,
// so a packed matrix is never larger than the file's bytes (generation reads no more).
//
// Inside a group-superblock, fields in this order:
//   d      16 fp16 scales, row r at index r                                      32 bytes
//   dmin   16 fp16 (Q4_K/Q5_K) or m: 16 fp16 mins (Q4_1/Q5_1)                    32 bytes
//   sub    Q6_K: int8 sub-scale of (block j, half h, row r) at (2j + h)·16 + r  256 bytes
//   six    6-bit values in the "pack6" form below: Q4_K/Q5_K 256 values (sc_j of row r at
//          16j + r, m_j of row r at 128 + 16j + r), IQ4_XS 128 values (ls_j at 16j + r)
//   high   per 32-block j, the bits of each element's code above the low nibble:
//          Q5_*: 64 bytes, Q6_K: 128 bytes (layouts below), block j at high + j · bytes
//   quants per 32-block j: 256 bytes of nibbles (512 bytes of biased int8 for Q8_0)
//
// Codes: the integer stored for an element, 0..2^bits − 1: Q4_0 q + 8, Q5_0 q + 16, Q6_K q + 32,
// IQ4 the codebook index (q = kIq4Values[code]), Q4_1/Q5_1/Q4_K/Q5_K q itself. Q8_0 stores q + 128.
//
// Nibble plane of a 32-block (256 bytes; the Q4_0 order, also the AMX/VNNI B order after the
// split): byte (jj·16 + r)·4 + i, jj < 4, i < 4, holds in its low nibble the code of element
// 4·jj + i of row r and in its high nibble that of element 16 + 4·jj + i. Splitting a 64-byte row
// jj into low and high nibbles gives the VNNI rows jj and jj + 4 (4 consecutive k per row).
// Q8_0 plane (512 bytes): byte (j·16 + r)·4 + i = q(row r, element 4j + i) + 128, j < 8.
//
// Fifth-bit plane (Q5_0/Q5_1/Q5_K, 64 bytes): 8 little-endian u64 masks; mask 2·jj + h, bit t is
// bit 4 of the code of the element in byte t of nibble row jj, low (h = 0) or high (h = 1) nibble.
// Two-high-bits plane (Q6_K, 128 bytes): two 64-byte rows p = 0, 1; byte t of row p holds, for
// nibble row jj = 2p + s (s = 0: bits 0-3, s = 1: bits 4-7), bits 4-5 of the low-nibble
// element's code at bits 4s + 0..1 and those of the high-nibble element at bits 4s + 2..3.
//
// pack6 of n values (n a multiple of 64): n/2 bytes of low nibbles, byte p = v[p] & 15 |
// (v[p + n/2] & 15) << 4, then n/4 bytes of high bits, byte p = Σ_s (v[p + s·n/4] >> 4 & 3) << 2s.
#pragma once

#include <cstdint>

#include "gguf/ggml_types.h"

namespace xtile::x16 {

constexpr int kRows = 16;

struct Geometry {
  GgmlType type;
  int elems;       // elements per superblock along k (32 or 256)
  int bytes;       // bytes per group-superblock = 16 × GGUF block bytes
  int dmin;        // offset of dmin / m, or -1
  int sub;         // offset of Q6_K's sub-scales, or -1
  int six;         // offset of the pack6 values, or -1
  int six_count;   // how many pack6 values (256 / 128)
  int high;        // offset of the high-bit planes, or -1
  int high_bytes;  // per 32-block: 64 (fifth bit) or 128 (two bits)
  int quants;      // offset of block 0's quant plane
  int quant_bytes; // per 32-block: 256 (nibbles) or 512 (Q8_0)
  int code_offset; // code = q − code_offset (Q4_0: −8); unused for IQ4 (codebook)
  bool codebook;   // IQ4: q = kIq4Values[code]
};

constexpr Geometry kQ8_0{GgmlType::Q8_0, 32, 544, -1, -1, -1, 0, -1, 0, 32, 512, -128, false};
constexpr Geometry kQ4_0{GgmlType::Q4_0, 32, 288, -1, -1, -1, 0, -1, 0, 32, 256, -8, false};
constexpr Geometry kQ4_1{GgmlType::Q4_1, 32, 320, 32, -1, -1, 0, -1, 0, 64, 256, 0, false};
constexpr Geometry kQ5_0{GgmlType::Q5_0, 32, 352, -1, -1, -1, 0, 32, 64, 96, 256, -16, false};
constexpr Geometry kQ5_1{GgmlType::Q5_1, 32, 384, 32, -1, -1, 0, 64, 64, 128, 256, 0, false};
constexpr Geometry kIq4Nl{GgmlType::IQ4_NL, 32, 288, -1, -1, -1, 0, -1, 0, 32, 256, 0, true};
constexpr Geometry kQ4_K{GgmlType::Q4_K, 256, 2304, 32, -1, 64, 256, -1, 0, 256, 256, 0, false};
constexpr Geometry kQ5_K{GgmlType::Q5_K, 256, 2816, 32, -1, 64, 256, 256, 64, 768, 256, 0, false};
constexpr Geometry kQ6_K{GgmlType::Q6_K, 256, 3360, -1, 32, -1, 0, 288, 128, 1312, 256, -32, false};
constexpr Geometry kIq4Xs{GgmlType::IQ4_XS, 256, 2176, -1, -1, 32, 128, -1, 0, 128, 256, 0, true};

constexpr const Geometry* kAll[] = {&kQ8_0, &kQ4_0, &kQ4_1, &kQ5_0,  &kQ5_1,
                                           &kIq4Nl, &kQ4_K, &kQ5_K, &kQ6_K, &kIq4Xs};

// The geometry of a type's x16 layout, or null.
inline const Geometry* geometry(GgmlType type) {
  for (const Geometry* g : kAll)
    if (g->type == type) return g;
  return nullptr;
}

// Value v (0..n-1) of a pack6 field of n values at p.
inline int unpack6(const uint8_t* p, int n, int v) {
  const int lo = (p[v % (n / 2)] >> (4 * (v / (n / 2)))) & 15;
  const int hi = (p[n / 2 + v % (n / 4)] >> (2 * (v / (n / 4)))) & 3;
  return lo | hi << 4;
}

}  // namespace xtile::x16
