// The bodies of kernels/attention_isa.h's functions, included by each ISA object (avx512:
// W = 16, avx2: W = 8).
#pragma once

#include <type_traits>

#include "kernels/attention_isa.h"

namespace xtile::attention_isa_impl {
namespace {  // each ISA object compiles its own copy (ops/attention_tiles.h)

// The tile steps of ops/attention_tiles.h compiled for this object's ISA: its splat_load is one
// VBROADCASTSS from memory (the weighted sums' weights, the scores' query values).
template <int W, int C, typename E, typename EV>
void one_block(const ops::AttentionShape& sh, const ops::attention_tiles::TileVectors& tv,
               const int64_t* pos, const ops::attention_tiles::BlockSource& src, int64_t c,
               float* const* slots, float* work) {
  ops::attention_tiles::tile_one_block<W, C, E, EV>(sh, tv, pos, src, c, slots, work);
}
template <int W, int C>
void all_blocks(const ops::AttentionShape& sh, const ops::attention_tiles::TileVectors* tvs,
                int n_tiles, const int64_t* pos, const ops::attention_tiles::F32Kv& kv, int64_t g,
                float* out, int64_t ldo, float* work) {
  ops::attention_tiles::tiles_all_blocks<W, C>(sh, tvs, n_tiles, pos, kv, g, out, ldo, work);
}

// The W-wide steps for head size hd (in place: E = uint16_t fp16, KvBf16; a q8_0 V in place:
// EV = KvQ8), or null for a size without.
template <int W, typename E, typename EV = E>
ops::attention_tiles::OneBlockFn one_block_for(int64_t hd) {
  switch (hd) {
    case 64:
      return one_block<W, 4, E, EV>;
    case 128:
      return one_block<W, 8, E, EV>;
    case 256:
      return one_block<W, 16, E, EV>;
    default:
      return nullptr;
  }
}
template <int W>
ops::attention_tiles::AllBlocksFn all_blocks_for(int64_t hd) {
  switch (hd) {
    case 64:
      return all_blocks<W, 4>;
    case 128:
      return all_blocks<W, 8>;
    case 256:
      return all_blocks<W, 16>;
    default:
      return nullptr;
  }
}

// A q8_0 K's scores over nq query vectors: Tile<NQ, CH>::run scores NQ vectors against CH
// chunks (its registers hold NQ·CH sums), here 4, then 2, then 1 vectors at a time, with CH4,
// CH2, CH1 chunks at a time and the chunks left one at a time. Each run makes `blocks` · 8
// steps (one per 4 dimensions), each requesting a share of pf's lines.
template <template <int, int> class Tile, int CH4, int CH2, int CH1>
void scores_q8_by(int nq, const ops::attention_tiles::QueryQ8* qq, const uint8_t* kc,
                  int64_t chunks, int64_t blocks, float scale, float* s,
                  ops::attention_tiles::PrefetchLines& pf) {
  using ops::attention_tiles::kB;
  using ops::attention_tiles::kChunk;
  const int64_t chunk_bytes = blocks * ops::kKq8BlockBytes;
  const auto runs = [&](int64_t ch) { return chunks / ch + chunks % ch; };
  const int64_t n4 = nq / 4, n2 = nq % 4 / 2, n1 = nq % 2;
  ops::attention_tiles::spread(pf, (n4 * runs(CH4) + n2 * runs(CH2) + n1 * runs(CH1)) * blocks * 8);
  const auto over_chunks = [&](auto nq_tag, auto ch_tag, const ops::attention_tiles::QueryQ8* q,
                               float* sv) {
    constexpr int NQ = decltype(nq_tag)::value, CH = decltype(ch_tag)::value;
    int64_t c = 0;
    for (; c + CH <= chunks; c += CH)
      Tile<NQ, CH>::run(q, kc + c * chunk_bytes, chunk_bytes, blocks, scale, sv + c * kChunk, pf);
    for (; c < chunks; ++c)
      Tile<NQ, 1>::run(q, kc + c * chunk_bytes, chunk_bytes, blocks, scale, sv + c * kChunk, pf);
  };
  int v = 0;
  for (; v + 4 <= nq; v += 4)
    over_chunks(std::integral_constant<int, 4>{}, std::integral_constant<int, CH4>{}, qq + v,
                s + v * kB);
  for (; v + 2 <= nq; v += 2)
    over_chunks(std::integral_constant<int, 2>{}, std::integral_constant<int, CH2>{}, qq + v,
                s + v * kB);
  for (; v < nq; ++v)
    over_chunks(std::integral_constant<int, 1>{}, std::integral_constant<int, CH1>{}, qq + v,
                s + v * kB);
}

// The chunks per run for whole blocks (prompt mode, 16 chunks: the Block set) and for
// generation's pieces (kPiece positions, 4 chunks: the Piece set, each a divisor of 4; with the
// whole-block set's 5 chunks for 2 vectors every chunk of a piece ran alone, 2 chains of
// dependent VPDPBUSD per step, and a q8_0 K scored slower than an fp16 one read in place).
template <template <int, int> class Tile, int B4, int B2, int B1, int P4, int P2, int P1>
void scores_q8(int nq, const ops::attention_tiles::QueryQ8* qq, const uint8_t* kc, int64_t chunks,
               int64_t blocks, float scale, float* s, ops::attention_tiles::PrefetchLines& pf) {
  if (chunks <= ops::attention_tiles::kPiece / ops::attention_tiles::kChunk)
    scores_q8_by<Tile, P4, P2, P1>(nq, qq, kc, chunks, blocks, scale, s, pf);
  else
    scores_q8_by<Tile, B4, B2, B1>(nq, qq, kc, chunks, blocks, scale, s, pf);
}

// out = e^x, 16 lanes at a time (n a multiple of 16).
template <int W>
void exp_lanes(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i + 16 <= n; i += 16)
    ops::lanes::store(out + i, ops::lanes::exp(ops::lanes::load<W>(x + i)));
}

}  // namespace
}  // namespace xtile::attention_isa_impl

// kernels/attention_isa.h's seven functions for an object of width W whose q8_0 K scorer is
// SCORER (written inside the object's namespace: avx512 or avx2).
#define XTILE_ATTENTION_ISA_DEFINE(W, SCORER)                                              \
  ops::attention_tiles::AllBlocksFn attention_all_blocks(int64_t hd) {                     \
    return attention_isa_impl::all_blocks_for<W>(hd);                                      \
  }                                                                                        \
  ops::attention_tiles::OneBlockFn attention_one_block(int64_t hd) {                       \
    return attention_isa_impl::one_block_for<W, float>(hd);                                \
  }                                                                                        \
  ops::attention_tiles::OneBlockFn attention_f16_one_block(int64_t hd) {                   \
    return attention_isa_impl::one_block_for<W, uint16_t>(hd);                             \
  }                                                                                        \
  ops::attention_tiles::OneBlockFn attention_bf16_one_block(int64_t hd) {                  \
    return attention_isa_impl::one_block_for<W, ops::attention_tiles::KvBf16>(hd);         \
  }                                                                                        \
  ops::attention_tiles::OneBlockFn attention_q8v_one_block(int64_t hd) {                   \
    return attention_isa_impl::one_block_for<W, uint16_t, ops::attention_tiles::KvQ8>(hd); \
  }                                                                                        \
  ops::attention_tiles::ScoreQ8Fn attention_q8_scores() {                                  \
    return SCORER;                                                                         \
  }                                                                                        \
  void attention_exp(const float* x, float* out, int64_t n) {                              \
    attention_isa_impl::exp_lanes<W>(x, out, n);                                           \
  }
