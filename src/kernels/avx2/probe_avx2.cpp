// Ceiling probes for the avx2 tier (see src/kernels/probes.h). Not kernels: measurements.
#include <immintrin.h>

#include "kernels/probes.h"

namespace xtile::probe {

int64_t maddubs_loop_avx2(int64_t iterations) {
  // The avx2 int8 dot product is VPMADDUBSW (u8×s8 pairs → s16) + VPMADDWD (pairs → s32) +
  // VPADDD: 32 multiply-accumulates per three instructions. 8 independent chains.
  __m256i acc[8];
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_set1_epi32(i);
  __m256i a = _mm256_set1_epi8(3);
  __m256i b = _mm256_set1_epi8(-2);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      // The operands are constants: without this barrier GCC hoists the multiplies out of the
      // loop and the probe would time VPADDD alone.
      __asm__ volatile("" : "+x"(a), "+x"(b));
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
    }
  }
  __m256i s = acc[0];
  for (int i = 1; i < 8; ++i) s = _mm256_add_epi32(s, acc[i]);
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  int64_t total = 0;
  for (int32_t v : lanes) total += v;
  return total;
}

int64_t fma_loop_avx2(int64_t iterations) {
  // 12 independent chains: more than FMA latency (4-5 cycles) × 2 ports needs on any AVX2 CPU,
  // and with the two operands 14 of the 16 ymm registers (16 chains spilled to the stack).
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  __m256 a = _mm256_set1_ps(1.0f);
  __m256 b = _mm256_set1_ps(1e-7f);  // the sums stay normal floats for any iteration count
  for (int64_t it = 0; it < iterations; ++it) {
    // A barrier on the operands (not the accumulators: see vnni_loop_avx512), so that GCC
    // cannot fold the constant product out of the loop.
    __asm__ volatile("" : "+x"(a), "+x"(b));
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(a, b, acc[i]);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  return static_cast<int64_t>(lanes[0]);
}

uint64_t read_sum_avx2(const uint8_t* p, size_t bytes) {
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 128 <= bytes; i += 128) {
    s0 = _mm256_xor_si256(s0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    s1 = _mm256_xor_si256(s1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    s2 = _mm256_xor_si256(s2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    s3 = _mm256_xor_si256(s3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_xor_si256(_mm256_xor_si256(s0, s1), _mm256_xor_si256(s2, s3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

}  // namespace xtile::probe
