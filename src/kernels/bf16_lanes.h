// bf16 → f32 loads for the float lanes (ops/lanes16.h), for the ISA objects (AVX2 or AVX-512):
// a bf16 value is the high half of its f32, so each 16 values are zero-extended to 32 bits and
// shifted left by 16 (VPMOVZXWD, VPSLLD): the same bits as base/fp16.h's bf16_to_fp32.
// Generation reads a bf16 cache this way in place, instead of a conversion pass into a buffer.
// Portable code never includes this.
#pragma once

#if !defined(__AVX2__)
#error "kernels/bf16_lanes.h needs AVX2 (include it only from the ISA objects)"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace xtile::bf16_lanes {

// The 16 bf16 values at p as 16 / W parts of W floats (the lanes16.h layout: part i holds
// values W·i .. W·i + W − 1). W = 16 needs AVX-512F.
template <int W, typename Part>
inline __attribute__((always_inline)) void load(const uint16_t* p, Part* parts) {
  static_assert(sizeof(Part) == 4 * W);
  if constexpr (W == 16) {
#if defined(__AVX512F__)
    // The all-lanes zero-masked forms (as in f16c_lanes.h): the unmasked intrinsics pass an
    // undefined vector that GCC 12 reports as maybe-uninitialized once inlined.
    const __mmask16 all = 0xffff;
    const __m512i u32 =
        _mm512_maskz_cvtepu16_epi32(all, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512i x = _mm512_maskz_slli_epi32(all, u32, 16);
    std::memcpy(&parts[0], &x, sizeof x);
#else
    static_assert(W != 16, "16-wide bf16 loads need AVX-512F");
#endif
  } else {
    static_assert(W == 8, "the ISA objects are 8 or 16 wide");
    for (int i = 0; i < 2; ++i) {
      const __m256i u32 =
          _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8 * i)));
      const __m256i x = _mm256_slli_epi32(u32, 16);
      std::memcpy(&parts[i], &x, sizeof x);
    }
  }
}

}  // namespace xtile::bf16_lanes
