// The avx512 tier's attention (kernels/attention_isa.h): the 16-wide tile steps (fp16 read in
// place among them), and a q8_0 K's scores through VPDPBUSD.
#include <immintrin.h>

#include <cstring>

#include "kernels/attention_isa_impl.h"

// GCC 12's AVX-512 headers initialise _mm512_undefined_*() from themselves, which its own
// -Wmaybe-uninitialized then reports at every inlined intrinsic (GCC PR 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace xtile::avx512 {
namespace {

using ops::kKq8BlockBytes;
using ops::attention_tiles::kB;
using ops::attention_tiles::kChunk;
using ops::attention_tiles::PrefetchLines;
using ops::attention_tiles::QueryQ8;

// NQ query vectors against CH chunks of 16 positions (one zmm lane per position). Per block of
// 32 dimensions and group of 4: one 64-byte load per chunk (its 16 positions' 4 stored bytes
// q_k + 128), and per vector its 4 int8 broadcast, VPDPBUSD adding the 4 products per lane to
// sums that start at the vector's bias −128 · Σ q, so that they end at Σ q · q_k exactly. Then
// per lane, in attention.h's order: float(isum) · (d_k · d_q) fused into the float sum.
// Register budget: NQ·CH int32 sums + NQ·CH float sums + CH loads + 1 broadcast ≤ 32 (4 × 3:
// 28; 2 × 5: 26; 1 × 8: 25; a generation piece's 4 chunks: 4 × 2: 19, 2 × 4: 21, 1 × 4: 13).
template <int NQ, int CH>
struct Q8Tile {
  static void run(const QueryQ8* qq, const uint8_t* kc, int64_t chunk_bytes, int64_t blocks,
                  float scale, float* s, PrefetchLines& pf) {
    PrefetchLines stepping = pf;  // in registers (attention_tiles.h, PrefetchLines)
    __m512 acc[NQ][CH];
    for (int v = 0; v < NQ; ++v)
      for (int c = 0; c < CH; ++c) acc[v][c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* kb = kc + b * kKq8BlockBytes;
      __m512i isum[NQ][CH];
      for (int v = 0; v < NQ; ++v) {
        const __m512i bias = _mm512_set1_epi32(static_cast<int32_t>(qq[v].bias[b]));
        for (int c = 0; c < CH; ++c) isum[v][c] = bias;
      }
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        stepping.step();
        __m512i k[CH];
        for (int c = 0; c < CH; ++c)
          k[c] = _mm512_loadu_si512(kb + c * chunk_bytes + 2 * kChunk + 64 * j);
        for (int v = 0; v < NQ; ++v) {
          int32_t q4;
          std::memcpy(&q4, qq[v].q + 32 * b + 4 * j, 4);
          const __m512i qv = _mm512_set1_epi32(q4);
          for (int c = 0; c < CH; ++c) isum[v][c] = _mm512_dpbusd_epi32(isum[v][c], k[c], qv);
        }
      }
      for (int c = 0; c < CH; ++c) {
        const __m512 dk = _mm512_cvtph_ps(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kb + c * chunk_bytes)));
        for (int v = 0; v < NQ; ++v) {
          const __m512 w = _mm512_mul_ps(dk, _mm512_set1_ps(qq[v].d[b]));
          acc[v][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[v][c]), w, acc[v][c]);
        }
      }
    }
    pf = stepping;
    const __m512 vs = _mm512_set1_ps(scale);
    for (int v = 0; v < NQ; ++v)
      for (int c = 0; c < CH; ++c)
        _mm512_storeu_ps(s + v * kB + c * kChunk, _mm512_mul_ps(acc[v][c], vs));
  }
};

void q8_scores(int nq, const QueryQ8* qq, const uint8_t* kc, int64_t chunks, int64_t blocks,
               float scale, float* s, PrefetchLines& pf) {
  attention_isa_impl::scores_q8<Q8Tile, 3, 5, 8, 2, 4, 4>(nq, qq, kc, chunks, blocks, scale, s, pf);
}

}  // namespace

XTILE_ATTENTION_ISA_DEFINE(16, q8_scores)

}  // namespace xtile::avx512
