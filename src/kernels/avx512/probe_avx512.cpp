// Ceiling probes for the avx512 tier (see src/kernels/probes.h). Not kernels: measurements.
// GCC 12's AVX-512 headers trip false -Wuninitialized warnings (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/probes.h"

namespace xtile::probe {

int64_t vnni_loop_avx512(int64_t iterations) {
  // 16 independent accumulators cover VPDPBUSD's latency (4-5 cycles) at 2 per cycle.
  __m512i acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_epi32(i);
  __m512i a = _mm512_set1_epi8(3);
  __m512i b = _mm512_set1_epi8(-2);
  for (int64_t it = 0; it < iterations; ++it) {
    // The barrier is on the operands, not on the accumulators: naming array elements in an asm
    // made GCC keep all 16 accumulators in memory, and the loop then measured store-to-load
    // forwarding (half the real peak) instead of VPDPBUSD.
    __asm__ volatile("" : "+v"(a), "+v"(b));
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  __m512i s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_epi32(s, acc[i]);
  // Summed as int64 from the stored lanes: _mm512_reduce_add_epi32 adds signed ints in C, and
  // the accumulators wrap (UBSan: signed overflow).
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, s);
  int64_t total = 0;
  for (int32_t v : lanes) total += v;
  return total;
}

int64_t fma_loop_avx512(int64_t iterations) {
  // 16 independent chains cover VFMADD's latency (4 cycles) at up to 2 per cycle.
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  __m512 a = _mm512_set1_ps(1.0f);
  __m512 b = _mm512_set1_ps(1e-7f);  // the sums stay normal floats for any iteration count
  for (int64_t it = 0; it < iterations; ++it) {
    __asm__ volatile("" : "+v"(a), "+v"(b));  // see vnni_loop_avx512
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(a, b, acc[i]);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  return static_cast<int64_t>(lanes[0]);
}

uint64_t read_sum_avx512(const uint8_t* p, size_t bytes) {
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 256 <= bytes; i += 256) {
    s0 = _mm512_xor_si512(s0, _mm512_load_si512(p + i));
    s1 = _mm512_xor_si512(s1, _mm512_load_si512(p + i + 64));
    s2 = _mm512_xor_si512(s2, _mm512_load_si512(p + i + 128));
    s3 = _mm512_xor_si512(s3, _mm512_load_si512(p + i + 192));
  }
  const __m512i s = _mm512_xor_si512(_mm512_xor_si512(s0, s1), _mm512_xor_si512(s2, s3));
  alignas(64) uint64_t lanes[8];  // unsigned sum (the intrinsic's reduction adds signed)
  _mm512_store_si512(lanes, s);
  uint64_t total = 0;
  for (uint64_t v : lanes) total += v;
  return total;
}

}  // namespace xtile::probe
