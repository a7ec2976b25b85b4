// GGML block formats beyond Q8_0/Q4_0 (quant.h), byte for byte as GGUF stores them
// (ggml-common.h; ../shared/quant-types.md §2). All scales are fp16 bit patterns unless noted.
#pragma once

#include <cstdint>

namespace xtile {

constexpr int kQK_K = 256;  // elements per K-quant / IQ4_XS superblock

// Q4_1: value = d·q + m, q = nibble 0..15 (element i < 16 low nibble of qs[i], i + 16 high).
struct BlockQ4_1 {
  uint16_t d, m;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

// Q5_0: value = d·(q − 16), q 0..31: the Q4_0 nibble plus bit i of the little-endian u32 qh as
// the fifth bit of element i (bit i + 16 for element i + 16).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22);

// Q5_1: value = d·q + m, q 0..31 as in Q5_0.
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

// IQ4_NL: value = d·kIq4Values[nibble], nibbles in Q4_0's order.
struct BlockIq4Nl {
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockIq4Nl) == 18);

// The IQ4 codebook (ggml's kvalues_iq4nl): the signed int8 each nibble stands for. Not `inline`:
// an inline variable is a weak symbol, and the tier objects must define none (tier_symbols_test).
constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                   1,    13,   25,  38,  53,  69,  89,  113};

// Q4_K: 8 sub-blocks of 32; value = d·sc_j·q − dmin·m_j, q 0..15, sc_j and m_j 6-bit (scales[12],
// unpacked by kquant_scale_min). qs is 4 chunks of 32 bytes: chunk c's low nibbles are sub-block
// 2c, its high nibbles sub-block 2c + 1.
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q5_K: Q4_K plus a fifth bit: element l of chunk c takes qh[l] bit 2c (sub-block 2c) or bit
// 2c + 1 (sub-block 2c + 1); q 0..31.
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ5_K) == 176);

// Q6_K: 16 sub-blocks of 16; value = d·sc_i·(q − 32), q 0..63, sc_i int8. Two halves of 128
// elements, each with 64 ql bytes and 32 qh bytes: for l < 32, elements l, l + 32, l + 64, l + 96
// of a half are ql[l] low, ql[l + 32] low, ql[l] high, ql[l + 32] high nibble, their two high
// bits qh[l] bits 0-1, 2-3, 4-5, 6-7.
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// IQ4_XS: 8 sub-blocks of 32; value = d·(ls_j − 32)·kIq4Values[nibble], ls_j 6-bit:
// low 4 bits in scales_l[j / 2] (nibble j % 2), high 2 bits in scales_h bits 2j, 2j + 1.
// Nibbles inside each sub-block in Q4_0's order (16 bytes per sub-block).
struct BlockIq4Xs {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[4];
  uint8_t qs[128];
};
static_assert(sizeof(BlockIq4Xs) == 136);

// Q4_K / Q5_K sub-block j (0..7): its 6-bit scale and min from the 12 packed bytes
// (ggml's get_scale_min_k4).
inline void kquant_scale_min(const uint8_t* s, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// IQ4_XS sub-block j's 6-bit scale ls_j (0..63; the factor is ls_j − 32).
inline int iq4xs_scale(const BlockIq4Xs& b, int j) {
  const int lo = (b.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
  const int hi = (b.scales_h >> (2 * j)) & 3;
  return lo | (hi << 4);
}

}  // namespace xtile
