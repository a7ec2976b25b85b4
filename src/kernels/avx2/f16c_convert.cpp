// Compiled with -mavx -mf16c (CMakeLists.txt, xtile_f16c): the intrinsics below become VCVTPH2PS
// and VCVTPS2PH. No function here may run before f16c_convert_usable() said yes.
#include "kernels/avx2/f16c_convert.h"

#include <immintrin.h>

namespace xtile::avx2 {

// Constant-initialized (no code runs): what the compiler was allowed to use in this file.
constinit const F16cObjectIsa kF16cObjectIsa = {
#ifdef __AVX__
    .avx = true,
#else
    .avx = false,
#endif
#ifdef __F16C__
    .f16c = true,
#else
    .f16c = false,
#endif
#ifdef __AVX2__
    .avx2 = true,
#else
    .avx2 = false,
#endif
#ifdef __FMA__
    .fma = true,
#else
    .fma = false,
#endif
#ifdef __AVX512F__
    .avx512f = true,
#else
    .avx512f = false,
#endif
};

// imm8 = 0: round to nearest even from the immediate, regardless of MXCSR.RC (bit 2 clear).
constexpr int kRoundNearestEven = 0;

float f16c_to_fp32(uint16_t h) {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

uint16_t f16c_from_fp32(float f) {
  return static_cast<uint16_t>(
      _mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), kRoundNearestEven), 0));
}

// The attention converts its fp16 KV cache from memory through here, 64 KiB at a time: one
// thread read it at a fraction of the bandwidth until each line was requested 8 KiB ahead
// (tg64 @ d2048 on one Zen 5 thread: 28 t/s without, 31-34 with 1 KiB, 35-36 with 8 KiB, 34
// with 32 KiB; prefetching into L2 instead made no difference).
constexpr int64_t kPrefetchAhead = 4096;  // halves (8 KiB)

void f16c_to_fp32_n(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(reinterpret_cast<const char*>(x + i + kPrefetchAhead), _MM_HINT_T0);
    for (int j = 0; j < 32; j += 8) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + j));
      _mm256_storeu_ps(y + i + j, _mm256_cvtph_ps(h));
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) y[i] = f16c_to_fp32(x[i]);
}

void f16c_from_fp32_n(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), kRoundNearestEven);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
  }
  for (; i < n; ++i) y[i] = f16c_from_fp32(x[i]);
}

}  // namespace xtile::avx2
