// bf16 and q8_0 → f32 loads for the float lanes (ops/lanes16.h), for the ISA objects (AVX2 or
// AVX-512): generation reads a bf16 cache and a q8_0 V this way in place, each 16 values
// converted as they are loaded, instead of a conversion pass into a buffer and the sums reading
// that. The bits are those of base/fp16.h and attention.h: a bf16 value is the high half of its
// f32 (zero-extended, shifted by 16: bf16_to_fp32); a q8_0 value is the f32 fp32(d) · q (exact:
// an 11-bit by 8-bit product). fp16 has its own loads (f16c_lanes.h: F16C, not AVX2). Portable
// code never includes this.
#pragma once

#if !defined(__AVX2__)
#error "kernels/kv_lanes.h needs AVX2 (include it only from the ISA objects)"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace xtile::kv_lanes {

// The fp16 scale at p as f32 (VCVTPH2PS of one value: the same bits as fp16_to_fp32).
inline __attribute__((always_inline)) float q8_scale(const void* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Each loads 16 values as 16 / W parts of W floats (the lanes16.h layout: part i holds values
// W·i .. W·i + W − 1), W = 16 (AVX-512F) or 8. The 16-wide forms are the all-lanes zero-masked
// ones (as in f16c_lanes.h): the unmasked intrinsics pass an undefined vector that GCC 12
// reports as maybe-uninitialized once inlined; the same instructions either way.

// The 16 bf16 values at p (VPMOVZXWD, VPSLLD).
template <int W, typename Part>
inline __attribute__((always_inline)) void bf16(const uint16_t* p, Part* parts) {
  static_assert(sizeof(Part) == 4 * W && (W == 8 || W == 16));
  if constexpr (W == 16) {
#if defined(__AVX512F__)
    const __mmask16 all = 0xffff;
    const __m512i u32 =
        _mm512_maskz_cvtepu16_epi32(all, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512i x = _mm512_maskz_slli_epi32(all, u32, 16);
    std::memcpy(&parts[0], &x, sizeof x);
#else
    static_assert(W != 16, "16-wide loads need AVX-512F");
#endif
  } else {
    for (int i = 0; i < 2; ++i) {
      const __m256i u32 =
          _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8 * i)));
      const __m256i x = _mm256_slli_epi32(u32, 16);
      std::memcpy(&parts[i], &x, sizeof x);
    }
  }
}

// The 16 int8 values at q times d (VPMOVSXBD, VCVTDQ2PS, VMULPS).
template <int W, typename Part>
inline __attribute__((always_inline)) void q8(const int8_t* q, float d, Part* parts) {
  static_assert(sizeof(Part) == 4 * W && (W == 8 || W == 16));
  if constexpr (W == 16) {
#if defined(__AVX512F__)
    const __mmask16 all = 0xffff;
    const __m512i i32 =
        _mm512_maskz_cvtepi8_epi32(all, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    const __m512 x = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(all, i32), _mm512_set1_ps(d));
    std::memcpy(&parts[0], &x, sizeof x);
#else
    static_assert(W != 16, "16-wide loads need AVX-512F");
#endif
  } else {
    for (int i = 0; i < 2; ++i) {
      const __m256i i32 =
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * i)));
      const __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(i32), _mm256_set1_ps(d));
      std::memcpy(&parts[i], &x, sizeof x);
    }
  }
}

}  // namespace xtile::kv_lanes
