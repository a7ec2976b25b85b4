// Activation quantization (DESIGN.md §3.1) with AVX-512: the same bytes as quantize_acts_row_ref
// (src/quant/quant.cpp), which is the definition. Every step mirrors it:
//   amax   vmaxps(|x|, amax) with amax as the second operand, so a NaN |x| leaves amax unchanged
//          exactly like ref's `if (a > amax) amax = a`; max is exact, so the order is free.
//   d, id  scalar, the same expressions as ref (id = 0 when d is 0 or 1/d overflows).
//   q      vmulps (never an fma: ref rounds x * id to fp32 before rounding to an integer), then
//          vcvtps2dq, which rounds half to even under the default MXCSR, = nearbyintf. A NaN
//          product (only from inf/NaN inputs) is masked to 0 as ref's to_int8_clamped does;
//          finite products are within ±127.00005, so the int32 fits int8 and vpmovdb is exact.
//   s      the int32 sum of the 32 q values.
// GCC 12's AVX-512 headers initialise _mm512_undefined_*() from themselves, which its own
// -Wmaybe-uninitialized then reports at every inlined intrinsic (GCC PR 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "kernels/avx512/avx512_kernels.h"

namespace xtile::avx512 {

namespace {

// ref's inverse_scale: 1/d, or 0 when d is 0 or 1/d is inf (blocks of denormals).
inline float inverse_scale(float d) {
  if (d == 0.0f) return 0.0f;
  const float id = 1.0f / d;
  return std::isinf(id) ? 0.0f : id;
}

}  // namespace

void quantize_row(const float* x, int64_t k, int8_t* q, float* d, int32_t* s) {
  if (k < 0 || k % 32 != 0)
    fail_row_length("quantize_acts_row__avx512", k);
  // vcvtps2dq rounds in the MXCSR mode; the contract (and ref, which checks the same) is
  // round-half-to-even.
  if (_MM_GET_ROUNDING_MODE() != _MM_ROUND_NEAREST)
    fail_rounding_mode("quantize_acts_row__avx512");
  const int64_t nb = k / 32;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * 32;
    const __m512 v0 = _mm512_loadu_ps(xb);
    const __m512 v1 = _mm512_loadu_ps(xb + 16);
    // NaN-ignoring max: vmaxps returns its second operand when either is NaN.
    __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), zero);
    m = _mm512_max_ps(_mm512_abs_ps(v1), m);
    const float amax = _mm512_reduce_max_ps(m);
    const float db = amax / 127.0f;
    const __m512 id = _mm512_set1_ps(inverse_scale(db));
    const __m512 p0 = _mm512_mul_ps(v0, id);
    const __m512 p1 = _mm512_mul_ps(v1, id);
    // Ordered lanes convert; NaN lanes become 0 (vcvtps2dq would give 0x80000000).
    const __m512i q0 = _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask(p0, p0, _CMP_ORD_Q), p0);
    const __m512i q1 = _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask(p1, p1, _CMP_ORD_Q), p1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32 + 16), _mm512_cvtepi32_epi8(q1));
    d[b] = db;
    s[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
  }
}

}  // namespace xtile::avx512
