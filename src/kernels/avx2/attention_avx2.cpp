// The avx2 tier's attention (kernels/attention_isa.h): the 8-wide tile steps (fp16 read in
// place among them), and a q8_0 K's scores through VPMADDUBSW + VPMADDWD.
#include <immintrin.h>

#include <cstring>

#include "kernels/attention_isa_impl.h"

namespace xtile::avx2 {
namespace {

using ops::kKq8BlockBytes;
using ops::attention_tiles::kB;
using ops::attention_tiles::kChunk;
using ops::attention_tiles::PrefetchLines;
using ops::attention_tiles::QueryQ8;

// NQ query vectors against CH chunks of 16 positions, each chunk two ymm halves of 8 positions
// (32 bytes: 8 positions × 4 stored bytes q_k + 128 per group of 4 dimensions). The stored
// bytes flipped back to int8 q_k; VPMADDUBSW multiplies |q| (unsigned) by q_k carrying q's
// sign (VPSIGNB) and adds pairs: |.| ≤ 2 · 127 · 127 = 32258, no saturation (q8_0 never holds
// −128); VPMADDWD by ones adds the pairs into the position's int32. The float sums live in s
// between blocks (attention.h's order per lane: float(isum) · (d_k · d_q) added, from 0).
// Register budget (16 ymm): NQ·CH·2 int32 sums + CH·2 loads + broadcast, |broadcast|, ones,
// flip, a product: 4 × 1: 15; 2 × 1: 11; 1 × 2: 13.
template <int NQ, int CH>
struct Q8Tile {
  static void run(const QueryQ8* qq, const uint8_t* kc, int64_t chunk_bytes, int64_t blocks,
                  float scale, float* s, PrefetchLines& pf) {
    PrefetchLines stepping = pf;  // in registers (attention_tiles.h, PrefetchLines)
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* kb = kc + b * kKq8BlockBytes;
      __m256i isum[NQ][CH][2];
      for (int v = 0; v < NQ; ++v)
        for (int c = 0; c < CH; ++c) isum[v][c][0] = isum[v][c][1] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        stepping.step();
        __m256i k[CH][2];
        for (int c = 0; c < CH; ++c)
          for (int h = 0; h < 2; ++h)
            k[c][h] =
                _mm256_xor_si256(flip, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                           kb + c * chunk_bytes + 2 * kChunk + 64 * j + 32 * h)));
        for (int v = 0; v < NQ; ++v) {
          int32_t q4;
          std::memcpy(&q4, qq[v].q + 32 * b + 4 * j, 4);
          const __m256i qv = _mm256_set1_epi32(q4);
          const __m256i aq = _mm256_abs_epi8(qv);
          for (int c = 0; c < CH; ++c)
            for (int h = 0; h < 2; ++h) {
              const __m256i pairs = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(k[c][h], qv));
              isum[v][c][h] = _mm256_add_epi32(isum[v][c][h], _mm256_madd_epi16(pairs, ones));
            }
        }
      }
      for (int c = 0; c < CH; ++c)
        for (int h = 0; h < 2; ++h) {
          const __m256 dk = _mm256_cvtph_ps(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(kb + c * chunk_bytes + 16 * h)));
          for (int v = 0; v < NQ; ++v) {
            float* out = s + v * kB + c * kChunk + 8 * h;
            const __m256 w = _mm256_mul_ps(dk, _mm256_set1_ps(qq[v].d[b]));
            const __m256 sum = b == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out);
            _mm256_storeu_ps(out, _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[v][c][h]), w, sum));
          }
        }
    }
    pf = stepping;
    const __m256 vs = _mm256_set1_ps(scale);
    for (int v = 0; v < NQ; ++v)
      for (int c = 0; c < 2 * CH; ++c) {
        float* out = s + v * kB + 8 * c;
        _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_loadu_ps(out), vs));
      }
  }
};

void q8_scores(int nq, const QueryQ8* qq, const uint8_t* kc, int64_t chunks, int64_t blocks,
               float scale, float* s, PrefetchLines& pf) {
  attention_isa_impl::scores_q8<Q8Tile, 1, 1, 2, 1, 1, 2>(nq, qq, kc, chunks, blocks, scale, s, pf);
}

}  // namespace

XTILE_ATTENTION_ISA_DEFINE(8, q8_scores)

}  // namespace xtile::avx2
