// Sixteen-float vectors for the float code outside the quantized matmuls (ops.h: attention,
// softmax, SiLU), written with GCC's vector extensions rather than intrinsics: the same source
// compiles, inside each XTILE_FLOAT_CLONES function, to one zmm (AVX-512), two ymm (AVX2) or
// four xmm (baseline) per operation. Element-wise IEEE operations give the same bits at every
// width, so the clones cannot differ (there is no fma: -ffp-contract=off).
//
// Every helper is always_inline: a 64-byte vector passed by value between functions compiled
// for different targets would change the calling convention (GCC's -Wpsabi note); inlined into
// the clone, it never crosses a call.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace xtile::ops::lanes {

using f32x16 = float __attribute__((vector_size(64)));
using i32x16 = int32_t __attribute__((vector_size(64)));

#define XTILE_LANES_INLINE inline __attribute__((always_inline))

XTILE_LANES_INLINE f32x16 load(const float* p) {
  f32x16 v;
  std::memcpy(&v, p, sizeof v);  // an unaligned vector load
  return v;
}

XTILE_LANES_INLINE void store(float* p, f32x16 v) {
  std::memcpy(p, &v, sizeof v);
}

XTILE_LANES_INLINE f32x16 splat(float x) {
  return f32x16{} + x;
}

// The 16-lane fold of ops.h (lane j += lane j + w for w = 8, 4, 2, 1, then lane 0 + lane 1) of
// sixteen vectors at once: result lane p = fold(a[p]). Each step adds, lane by lane, exactly the
// pairs the one-vector fold adds (left operand the lower lane), but packs two vectors' halves
// into one vector, so 16 folds cost 15 vector adds instead of 16 × 4 horizontal steps.
XTILE_LANES_INLINE f32x16 fold16(const f32x16* a) {
  f32x16 b[8], c[4], d[2];
  for (int i = 0; i < 8; ++i)  // w = 8: lanes 0..7 of a[2i], then of a[2i+1]
    b[i] = __builtin_shuffle(a[2 * i], a[2 * i + 1],
                             i32x16{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}) +
           __builtin_shuffle(a[2 * i], a[2 * i + 1],
                             i32x16{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31});
  for (int i = 0; i < 4; ++i)  // w = 4: four lanes for each of 4 vectors
    c[i] = __builtin_shuffle(b[2 * i], b[2 * i + 1],
                             i32x16{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27}) +
           __builtin_shuffle(b[2 * i], b[2 * i + 1],
                             i32x16{4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31});
  for (int i = 0; i < 2; ++i)  // w = 2: two lanes for each of 8 vectors
    d[i] = __builtin_shuffle(c[2 * i], c[2 * i + 1],
                             i32x16{0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29}) +
           __builtin_shuffle(c[2 * i], c[2 * i + 1],
                             i32x16{2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31});
  // lane 0 + lane 1 of each of 16 vectors
  return __builtin_shuffle(d[0], d[1],
                           i32x16{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}) +
         __builtin_shuffle(d[0], d[1],
                           i32x16{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31});
}

// e^x of each lane, within 2 ulp of the exact value for normal results (Cody-Waite reduction
// x = n·ln2 + r, |r| <= ln2/2, then a degree-7 polynomial, Cephes' expf coefficients, and an
// exact scaling by 2^n). Only multiplies, adds, compares and integer bit operations, each
// rounded per IEEE: the same bits at every vector width, unlike the libm call (std::exp) it
// replaces in softmax and SiLU, which is one scalar call per element. Limits as expf: +inf
// above 88.72, 0 below -103.9 (subnormals from -87.34), NaN stays NaN.
XTILE_LANES_INLINE f32x16 exp(f32x16 x) {
  const f32x16 max_x = splat(88.72283935546875f), min_x = splat(-103.972084045410156f);
  const f32x16 xc = x > max_x ? max_x : (x < min_x ? min_x : x);
  // n = nearest integer to x·log2(e): adding and subtracting 1.5·2^23 rounds to even.
  const f32x16 round_magic = splat(12582912.0f);
  const f32x16 n = (xc * splat(1.44269502162933349609375f) + round_magic) - round_magic;
  // r = x − n·ln2 with ln2 split in two (the first part has 9 bits: n·part exact for |n| < 2^15).
  const f32x16 r = (xc - n * splat(0.693359375f)) - n * splat(-2.12194440e-4f);
  f32x16 p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  const f32x16 y = (p * (r * r) + r) + splat(1.0f);
  // 2^n as two factors 2^a · 2^b, a = n >> 1, b = n − a, each a normal float for n in
  // [-150, 128]: the result underflows gradually and overflows to +inf as expf does.
  const i32x16 ni = __builtin_convertvector(n, i32x16);
  const i32x16 a = ni >> 1, b = ni - a;
  const f32x16 scale_a = (f32x16)((a + 127) << 23);
  const f32x16 scale_b = (f32x16)((b + 127) << 23);
  const f32x16 e = (y * scale_a) * scale_b;
  const f32x16 inf = splat(__builtin_inff());
  const f32x16 result = x > max_x ? inf : e;
  return x != x ? x + x : result;  // NaN in, NaN out (quieted)
}

}  // namespace xtile::ops::lanes
