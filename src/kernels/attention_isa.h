// Attention (ops/attention.h) compiled in the ISA objects, where instructions outside the
// portable code's baseline are allowed; attention.cpp picks these where the CPU has the tier
// and otherwise computes the same bits with its own baseline copies.
// - The tile steps (ops/attention_tiles.h), with splat_load as one VBROADCASTSS from memory.
// - Generation over an fp16 cache read in place (E = uint16_t): each K and V load converted by
//   VCVTPH2PS as part of the arithmetic, instead of a conversion pass into a buffer.
// - Generation over a bf16 cache read in place (each load zero-extended and shifted: VPMOVZXWD,
//   VPSLLD), K bf16 in place or q8_0.
// - Generation over a q8_0 V read in place (kv_lanes.h: each 16 values sign-extended, converted
//   and scaled by their block's d as they are loaded), K beside it fp16 in place or q8_0.
// - A q8_0 K's scores as integer dot products of 4 bytes per lane (VPDPBUSD on avx512,
//   VPMADDUBSW + VPMADDWD on avx2) instead of a conversion to f32 and float multiply-adds.
#pragma once

#include <cstdint>

#include "ops/attention_tiles.h"

namespace xtile::avx512 {
// The 16-wide (zmm) steps for head size hd (64, 128, 256), or null for another size: prompt
// tiles, a split-mode block over f32 (or converted) K/V, and over an fp16 cache in place. Call
// only where the avx512 tier is available.
ops::attention_tiles::AllBlocksFn attention_all_blocks(int64_t hd);
ops::attention_tiles::OneBlockFn attention_one_block(int64_t hd);
ops::attention_tiles::OneBlockFn attention_f16_one_block(int64_t hd);
// The same with a q8_0 V read in place (K fp16 in place or q8_0); over a bf16 cache (K bf16 in
// place or q8_0).
ops::attention_tiles::OneBlockFn attention_q8v_one_block(int64_t hd);
ops::attention_tiles::OneBlockFn attention_bf16_one_block(int64_t hd);
// A q8_0 K's scorer (VPDPBUSD).
ops::attention_tiles::ScoreQ8Fn attention_q8_scores();
// out[i] = e^x[i] for i < n (a multiple of 16) by this object's lanes::exp, the softmax's: for the
// tests that compare its bits (VSCALEFPS here) with the baseline's.
void attention_exp(const float* x, float* out, int64_t n);
}  // namespace xtile::avx512

namespace xtile::avx2 {
// The 8-wide (ymm) versions; call only where the avx2 tier (AVX2, FMA, F16C) is available.
ops::attention_tiles::AllBlocksFn attention_all_blocks(int64_t hd);
ops::attention_tiles::OneBlockFn attention_one_block(int64_t hd);
ops::attention_tiles::OneBlockFn attention_f16_one_block(int64_t hd);
ops::attention_tiles::OneBlockFn attention_q8v_one_block(int64_t hd);
ops::attention_tiles::OneBlockFn attention_bf16_one_block(int64_t hd);
ops::attention_tiles::ScoreQ8Fn attention_q8_scores();
void attention_exp(const float* x, float* out, int64_t n);
}  // namespace xtile::avx2
