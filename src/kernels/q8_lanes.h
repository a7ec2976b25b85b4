// q8_0 → f32 loads for the float lanes (ops/lanes16.h), for the ISA objects (AVX2 or AVX-512):
// 16 int8 values of a q8_0 block times its scale, as the f32 fp32(d) · q that base/fp16.h and
// attention.h define (exact: an 11-bit by 8-bit product). Generation reads a q8_0 V this way in
// place, each 16 values sign-extended, converted and scaled as they are loaded, instead of a
// conversion pass into a buffer and the sums reading that. Portable code never includes this.
#pragma once

#if !defined(__AVX2__)
#error "kernels/q8_lanes.h needs AVX2 (include it only from the ISA objects)"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace xtile::q8_lanes {

// The fp16 scale at p as f32 (VCVTPH2PS of one value: the same bits as fp16_to_fp32).
inline __attribute__((always_inline)) float scale(const void* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// The 16 int8 values at q times d as 16 / W parts of W floats (the lanes16.h layout: part i
// holds values W·i .. W·i + W − 1). W = 16 needs AVX-512F.
template <int W, typename Part>
inline __attribute__((always_inline)) void load(const int8_t* q, float d, Part* parts) {
  static_assert(sizeof(Part) == 4 * W);
  if constexpr (W == 16) {
#if defined(__AVX512F__)
    // The all-lanes zero-masked forms (as in f16c_lanes.h): the unmasked intrinsics pass an
    // undefined vector that GCC 12 reports as maybe-uninitialized once inlined; same VPMOVSXBD
    // and VCVTDQ2PS either way.
    const __mmask16 all = 0xffff;
    const __m512i i32 =
        _mm512_maskz_cvtepi8_epi32(all, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    const __m512 x = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(all, i32), _mm512_set1_ps(d));
    std::memcpy(&parts[0], &x, sizeof x);
#else
    static_assert(W != 16, "16-wide q8_0 loads need AVX-512F");
#endif
  } else {
    static_assert(W == 8, "the ISA objects are 8 or 16 wide");
    for (int i = 0; i < 2; ++i) {
      const __m256i i32 =
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * i)));
      const __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(i32), _mm256_set1_ps(d));
      std::memcpy(&parts[i], &x, sizeof x);
    }
  }
}

}  // namespace xtile::q8_lanes
