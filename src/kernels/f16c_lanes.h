// fp16 → f32 loads for the float lanes (ops/lanes16.h), for translation units compiled with F16C
// (the ISA objects of CMakeLists.txt): VCVTPH2PS converts 16 values exactly (every fp16 value
// is an f32 value), the same bits as base/fp16.h's fp16_to_fp32. Portable code never includes
// this: its compiler flags lack F16C, and an ISA's instructions stay in that ISA's objects.
#pragma once

#if !defined(__F16C__)
#error "kernels/f16c_lanes.h needs F16C (include it only from the ISA objects)"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace xtile::f16c_lanes {

// The 16 fp16 values at p as 16 / W parts of W floats (the lanes16.h layout: part i holds
// values W·i .. W·i + W − 1). W = 16 needs AVX-512F.
template <int W, typename Part>
inline __attribute__((always_inline)) void load(const uint16_t* p, Part* parts) {
  static_assert(sizeof(Part) == 4 * W);
  if constexpr (W == 16) {
#if defined(__AVX512F__)
    // The all-lanes zero-masked form: the unmasked intrinsic passes an undefined vector that
    // GCC 12 reports as maybe-uninitialized once inlined; the same VCVTPH2PS either way.
    const __m512 x = _mm512_maskz_cvtph_ps(
        static_cast<__mmask16>(0xffff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    std::memcpy(&parts[0], &x, sizeof x);
#else
    static_assert(W != 16, "16-wide fp16 loads need AVX-512F");
#endif
  } else if constexpr (W == 8) {
    for (int i = 0; i < 2; ++i) {
      const __m256 x =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8 * i)));
      std::memcpy(&parts[i], &x, sizeof x);
    }
  } else {
    for (int i = 0; i < 4; ++i) {
      const __m128 x = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 4 * i)));
      std::memcpy(&parts[i], &x, sizeof x);
    }
  }
}

}  // namespace xtile::f16c_lanes
