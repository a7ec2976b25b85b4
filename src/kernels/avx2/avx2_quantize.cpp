// Activation quantization (DESIGN.md §3.1) with AVX2: the same bytes as quantize_acts_row_ref
// (src/quant/quant.cpp), which is the definition. Every step mirrors it:
//   amax   vmaxps(|x|, amax) with amax as the second operand, so a NaN |x| leaves amax unchanged
//          exactly like ref's `if (a > amax) amax = a`; max is exact, so the order is free.
//   d, id  scalar, the same expressions as ref (id = 0 when d is 0 or 1/d overflows).
//   q      vmulps (never an fma: ref rounds x * id to fp32 before rounding to an integer), then
//          vcvtps2dq, which rounds half to even under the default MXCSR, = nearbyintf. A NaN
//          product (only from inf/NaN inputs) is masked to 0 as ref's to_int8_clamped does;
//          finite products are within ±127.00005, so the saturating packs are exact.
//   s      the int32 sum of the 32 q values.
#include <immintrin.h>

#include <cmath>

#include "base/error.h"
#include "kernels/avx2/avx2_kernels.h"

namespace xtile::avx2 {

namespace {

// ref's inverse_scale: 1/d, or 0 when d is 0 or 1/d is inf (blocks of denormals).
inline float inverse_scale(float d) {
  if (d == 0.0f) return 0.0f;
  const float id = 1.0f / d;
  return std::isinf(id) ? 0.0f : id;
}

// Rounds x * id to int32, NaN lanes to 0 (vcvtps2dq would give 0x80000000).
inline __m256i round_to_int(__m256 x, __m256 id) {
  const __m256 p = _mm256_mul_ps(x, id);
  const __m256 ordered = _mm256_cmp_ps(p, p, _CMP_ORD_Q);
  return _mm256_and_si256(_mm256_cvtps_epi32(p), _mm256_castps_si256(ordered));
}

}  // namespace

void quantize_row(const float* x, int64_t k, int8_t* q, float* d, int32_t* s) {
  if (k < 0 || k % 32 != 0)
    fail_row_length("quantize_acts_row__avx2", k);
  // vcvtps2dq rounds in the MXCSR mode; the contract (and ref, which checks the same) is
  // round-half-to-even.
  if (_MM_GET_ROUNDING_MODE() != _MM_ROUND_NEAREST)
    fail_rounding_mode("quantize_acts_row__avx2");
  const int64_t nb = k / 32;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  // vpacksswb/vpackssdw work within 128-bit lanes; this puts the dwords back in order.
  const __m256i unshuffle = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * 32;
    const __m256 v0 = _mm256_loadu_ps(xb);
    const __m256 v1 = _mm256_loadu_ps(xb + 8);
    const __m256 v2 = _mm256_loadu_ps(xb + 16);
    const __m256 v3 = _mm256_loadu_ps(xb + 24);
    // NaN-ignoring max: vmaxps returns its second operand when either is NaN.
    __m256 m = _mm256_max_ps(_mm256_and_ps(v0, abs_mask), _mm256_setzero_ps());
    m = _mm256_max_ps(_mm256_and_ps(v1, abs_mask), m);
    m = _mm256_max_ps(_mm256_and_ps(v2, abs_mask), m);
    m = _mm256_max_ps(_mm256_and_ps(v3, abs_mask), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float amax = _mm_cvtss_f32(h);
    const float db = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(inverse_scale(db));
    const __m256i q0 = round_to_int(v0, id);
    const __m256i q1 = round_to_int(v1, id);
    const __m256i q2 = round_to_int(v2, id);
    const __m256i q3 = round_to_int(v3, id);
    const __m256i q01 = _mm256_packs_epi32(q0, q1);  // lanes: q0[0..3] q1[0..3] | q0[4..7] q1[4..7]
    const __m256i q23 = _mm256_packs_epi32(q2, q3);
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q01, q23), unshuffle);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32), bytes);
    const __m256i sum8 = _mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3));
    __m128i sum4 = _mm_add_epi32(_mm256_castsi256_si128(sum8), _mm256_extracti128_si256(sum8, 1));
    sum4 = _mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, _MM_SHUFFLE(1, 0, 3, 2)));
    sum4 = _mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, _MM_SHUFFLE(2, 3, 0, 1)));
    d[b] = db;
    s[b] = _mm_cvtsi128_si32(sum4);
  }
}

}  // namespace xtile::avx2
