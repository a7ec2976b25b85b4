// Sixteen floats as one value ("16 lanes", the order every float reduction of ops.h follows),
// for the vectorized float code outside the quantized matmuls (attention, softmax, SiLU).
//
// Written with GCC's vector extensions rather than intrinsics, and held as 16/W native vectors
// of W floats: W = 16 (one zmm, AVX-512), 8 (two ymm, AVX2) or 4 (four xmm, baseline x86-64).
// The code using it is a template on W, and each CPU gets its own instantiation through GCC
// function multi-versioning (XTILE_LANES_VERSIONS). A single 64-byte vector type would compile
// everywhere too, but below AVX-512 GCC splits it through the stack and the AVX2 build ran
// 10× slower. Every operation is element-wise and rounded per IEEE (-ffp-contract=off: a
// product and a sum are fused only where the code says lanes::fma), and fold16 adds exactly the
// pairs of the one-vector fold, so every W gives the same bits.
//
// Every helper is always_inline: a vector wider than the target's registers passed by value
// between functions would change the calling convention; inlined, it never crosses a call.
// (GCC still prints its -Wpsabi note per instantiation, hence -Wno-psabi in CMakeLists.txt.)
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#define XTILE_LANES_INLINE inline __attribute__((always_inline))

// Defines NAME(PARAMS) three times, for AVX-512, AVX2 and baseline x86-64, each body calling
// IMPL<W>(ARGS) with its vector width; the loader picks one for the CPU (an ifunc), as for
// XTILE_FLOAT_CLONES (the AVX2 one also with FMA, which every AVX2 server and laptop CPU has:
// lanes::fma is then vectorized). PARAMS and ARGS are parenthesized lists. Call NAME only
// from its own translation unit (export a plain function that calls it): GCC 12 emits the
// dispatcher only where the versions are called, and a caller in another unit links to the baseline
// version.
#define XTILE_LANES_STRIP(...) __VA_ARGS__
#define XTILE_LANES_VERSIONS(RET, NAME, PARAMS, IMPL, ARGS)                \
  __attribute__((target("avx512f"))) RET NAME(XTILE_LANES_STRIP PARAMS) {  \
    return IMPL<16>(XTILE_LANES_STRIP ARGS);                               \
  }                                                                        \
  __attribute__((target("avx2,fma"))) RET NAME(XTILE_LANES_STRIP PARAMS) { \
    return IMPL<8>(XTILE_LANES_STRIP ARGS);                                \
  }                                                                        \
  __attribute__((target("default"))) RET NAME(XTILE_LANES_STRIP PARAMS) {  \
    return IMPL<4>(XTILE_LANES_STRIP ARGS);                                \
  }

namespace xtile::ops::lanes {

// The native vector types of each width (spelled per width: GCC drops vector_size from an alias
// template whose size depends on the template argument).
template <int W>
struct NativeTypes;
template <>
struct NativeTypes<16> {
  typedef float F __attribute__((vector_size(64)));
  typedef int32_t I __attribute__((vector_size(64)));
};
template <>
struct NativeTypes<8> {
  typedef float F __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
};
template <>
struct NativeTypes<4> {
  typedef float F __attribute__((vector_size(16)));
  typedef int32_t I __attribute__((vector_size(16)));
};
template <int W>
using Native = typename NativeTypes<W>::F;
template <int W>
using NativeInt = typename NativeTypes<W>::I;

// Lanes 16/W·i .. 16/W·i + W − 1 are part[i].
template <int W>
struct F16 {
  static constexpr int kParts = 16 / W;
  Native<W> part[kParts];
};

#define XTILE_LANES_BINARY(OP)                                                   \
  template <int W>                                                               \
  XTILE_LANES_INLINE F16<W> operator OP(const F16<W>& a, const F16<W>& b) {      \
    F16<W> r;                                                                    \
    _Pragma("GCC unroll 4") for (int i = 0; i < F16<W>::kParts; ++i) r.part[i] = \
        a.part[i] OP b.part[i];                                                  \
    return r;                                                                    \
  }
XTILE_LANES_BINARY(+)
XTILE_LANES_BINARY(-)
XTILE_LANES_BINARY(*)
XTILE_LANES_BINARY(/)
#undef XTILE_LANES_BINARY

// a · b + c per lane with one rounding (IEEE fusedMultiplyAdd), on one native vector. In the ISA
// objects (AVX-512 or FMA at compile time) one VFMADD231PS: for zmm an asm (written as per-lane
// fmaf calls, GCC vectorizes them only after its loop unrolling has judged the 16 calls too big
// to unroll the tiles' loops over accumulators, which then live on the stack: pp2048 −40 %), for
// ymm the compiler's own VFMADD builtin (an asm per ymm half of a 16-lane value made GCC move
// the halves through memory and general registers: AVX2 prompt attention 7× slower).
// Elsewhere (the baseline build, the tests' fixed widths) per-lane fmaf: correct, a libm call
// per lane without FMA at compile time (CPUs with AVX2 run the ISA objects instead).
template <int W>
XTILE_LANES_INLINE Native<W> fma_native(Native<W> a, Native<W> b, Native<W> c) {
#if defined(__AVX512F__)
  if constexpr (W == 16) {
    asm("vfmadd231ps %2, %1, %0" : "+v"(c) : "v"(a), "v"(b));
    return c;
  }
#endif
#if defined(__FMA__)
  if constexpr (W == 8) return __builtin_ia32_vfmaddps256(a, b, c);
#endif
  Native<W> r;
#pragma GCC unroll 16
  for (int l = 0; l < W; ++l) r[l] = __builtin_fmaf(a[l], b[l], c[l]);
  return r;
}

template <int W>
XTILE_LANES_INLINE F16<W> fma(const F16<W>& a, const F16<W>& b, const F16<W>& c) {
  F16<W> r;
#pragma GCC unroll 4
  for (int i = 0; i < F16<W>::kParts; ++i)
    r.part[i] = fma_native<W>(a.part[i], b.part[i], c.part[i]);
  return r;
}

// Lane-wise b > a ? b : a: a NaN in a stays, a NaN in b is ignored (the loop order of a max).
template <int W>
XTILE_LANES_INLINE F16<W> max(const F16<W>& a, const F16<W>& b) {
  F16<W> r;
#pragma GCC unroll 4
  for (int i = 0; i < F16<W>::kParts; ++i)
    r.part[i] = b.part[i] > a.part[i] ? b.part[i] : a.part[i];
  return r;
}

template <int W>
XTILE_LANES_INLINE F16<W> zero() {
  F16<W> r;
#pragma GCC unroll 4
  for (int i = 0; i < F16<W>::kParts; ++i) r.part[i] = Native<W>{};
  return r;
}

template <int W>
XTILE_LANES_INLINE F16<W> splat(float x) {
  F16<W> r;
#pragma GCC unroll 4
  for (int i = 0; i < F16<W>::kParts; ++i) r.part[i] = Native<W>{} + x;
  return r;
}

// *p in every lane of a native vector, as a broadcast from memory: in the ISA objects (AVX2 /
// AVX-512 at compile time) one VBROADCASTSS from memory, in an asm so that GCC can neither fold
// it into each multiply that uses it as an embedded broadcast (one load per use: pp4096 −14 % in
// the weighted sums) nor form it as splat's add to zero and a register broadcast (two vector ops
// on the pipes the sums need). Elsewhere 0 + *p. The same value either way (0 + x turns −0
// into +0, but every use here multiplies it into a sum that starts at +0, so the sums do not
// change).
template <int W>
XTILE_LANES_INLINE Native<W> splat_load_native(const float* p) {
#if defined(__AVX512F__)
  if constexpr (W == 16) {
    Native<W> r;
    asm("vbroadcastss %1, %0" : "=v"(r) : "m"(*p));
    return r;
  }
#endif
#if defined(__AVX2__)
  if constexpr (W == 8) {
    Native<W> r;
    asm("vbroadcastss %1, %0" : "=x"(r) : "m"(*p));
    return r;
  }
#endif
  return Native<W>{} + *p;
}

template <int W>
XTILE_LANES_INLINE F16<W> splat_load(const float* p) {
  F16<W> r;
  r.part[0] = splat_load_native<W>(p);
#pragma GCC unroll 4
  for (int i = 1; i < F16<W>::kParts; ++i) r.part[i] = r.part[0];
  return r;
}

template <int W>
XTILE_LANES_INLINE F16<W> load(const float* p) {
  F16<W> r;
  // One native-size copy per part: a single 64-byte memcpy is expanded below AVX-512 as 16-byte
  // moves through the stack, and the wider reloads then miss store forwarding (10× slower).
#pragma GCC unroll 4
  for (int i = 0; i < F16<W>::kParts; ++i) std::memcpy(&r.part[i], p + i * W, sizeof r.part[i]);
  return r;
}

template <int W>
XTILE_LANES_INLINE void store(float* p, const F16<W>& v) {
#pragma GCC unroll 4
  for (int i = 0; i < F16<W>::kParts; ++i) std::memcpy(p + i * W, &v.part[i], sizeof v.part[i]);
}

template <int W>
XTILE_LANES_INLINE float lane(const F16<W>& v, int i) {
  return v.part[i / W][i % W];
}

// Lanes i < n of a, the others b (0 <= n <= 16): a select, so NaNs in the lanes not taken never
// reach the result.
template <int W>
XTILE_LANES_INLINE F16<W> first_lanes(const F16<W>& a, const F16<W>& b, int n) {
  using I = NativeInt<W>;
  F16<W> r;
#pragma GCC unroll 4
  for (int i = 0; i < F16<W>::kParts; ++i) {
    I idx;
    for (int l = 0; l < W; ++l) idx[l] = i * W + l;
    r.part[i] = idx < n ? a.part[i] : b.part[i];
  }
  return r;
}

// The 16 lanes' pairwise fold of ops.h (lane j += lane j + w for w = 8, 4, 2, 1), of one value.
template <int W>
XTILE_LANES_INLINE float fold(const F16<W>& v) {
  float t[16];
  for (int i = 0; i < 16; ++i) t[i] = lane(v, i);
  for (int j = 0; j < 8; ++j) t[j] += t[j + 8];
  for (int j = 0; j < 4; ++j) t[j] += t[j + 4];
  for (int j = 0; j < 2; ++j) t[j] += t[j + 2];
  return t[0] + t[1];
}

// The largest lane (exact: any order gives the same value; NaN lanes ignored unless all are).
template <int W>
XTILE_LANES_INLINE float max_lane(const F16<W>& v) {
  float m = lane(v, 0);
  for (int i = 1; i < 16; ++i) m = lane(v, i) > m ? lane(v, i) : m;
  return m;
}

// The 16-lane fold of ops.h (lane j += lane j + w for w = 8, 4, 2, 1, then lane 0 + lane 1) of
// sixteen values at once: result lane p = fold(a[p]). Each step adds, lane by lane, exactly the
// pairs the one-value fold adds (the lower lane the left operand). While a step's two halves
// are whole native vectors it adds vectors; below that it packs two values' halves into one
// vector with shuffles, so 16 folds cost 15 vector adds' worth instead of 16 × 4 horizontal
// steps.
XTILE_LANES_INLINE F16<16> fold16(const F16<16>* a) {
  using V = Native<16>;
  V b[8], c[4], d[2];
  for (int i = 0; i < 8; ++i)  // w = 8: lanes 0..7 of a[2i], then of a[2i+1]
    b[i] = __builtin_shufflevector(a[2 * i].part[0], a[2 * i + 1].part[0], 0, 1, 2, 3, 4, 5, 6, 7,
                                   16, 17, 18, 19, 20, 21, 22, 23) +
           __builtin_shufflevector(a[2 * i].part[0], a[2 * i + 1].part[0], 8, 9, 10, 11, 12, 13, 14,
                                   15, 24, 25, 26, 27, 28, 29, 30, 31);
  for (int i = 0; i < 4; ++i)  // w = 4: four lanes for each of 4 values
    c[i] = __builtin_shufflevector(b[2 * i], b[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19,
                                   24, 25, 26, 27) +
           __builtin_shufflevector(b[2 * i], b[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22,
                                   23, 28, 29, 30, 31);
  for (int i = 0; i < 2; ++i)  // w = 2: two lanes for each of 8 values
    d[i] = __builtin_shufflevector(c[2 * i], c[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21,
                                   24, 25, 28, 29) +
           __builtin_shufflevector(c[2 * i], c[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22,
                                   23, 26, 27, 30, 31);
  F16<16> r;  // lane 0 + lane 1 of each of 16 values
  r.part[0] = __builtin_shufflevector(d[0], d[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                      28, 30) +
              __builtin_shufflevector(d[0], d[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                      29, 31);
  return r;
}

XTILE_LANES_INLINE F16<8> fold16(const F16<8>* a) {
  using V = Native<8>;
  V b[16], c[8], d[4];
  for (int i = 0; i < 16; ++i) b[i] = a[i].part[0] + a[i].part[1];  // w = 8: whole halves
  for (int i = 0; i < 8; ++i)  // w = 4: four lanes for each of 2 values
    c[i] = __builtin_shufflevector(b[2 * i], b[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(b[2 * i], b[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15);
  for (int i = 0; i < 4; ++i)  // w = 2: two lanes for each of 4 values
    d[i] = __builtin_shufflevector(c[2 * i], c[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13) +
           __builtin_shufflevector(c[2 * i], c[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15);
  F16<8> r;
  for (int i = 0; i < 2; ++i)  // lane 0 + lane 1 of each of 8 values
    r.part[i] = __builtin_shufflevector(d[2 * i], d[2 * i + 1], 0, 2, 4, 6, 8, 10, 12, 14) +
                __builtin_shufflevector(d[2 * i], d[2 * i + 1], 1, 3, 5, 7, 9, 11, 13, 15);
  return r;
}

XTILE_LANES_INLINE F16<4> fold16(const F16<4>* a) {
  using V = Native<4>;
  V c[16], d[8];
  for (int i = 0; i < 16; ++i) {
    // w = 8: lanes 0..3 + 8..11 and 4..7 + 12..15; w = 4: those two results added.
    const V lo = a[i].part[0] + a[i].part[2];
    const V hi = a[i].part[1] + a[i].part[3];
    c[i] = lo + hi;
  }
  for (int i = 0; i < 8; ++i)  // w = 2: two lanes for each of 2 values
    d[i] = __builtin_shufflevector(c[2 * i], c[2 * i + 1], 0, 1, 4, 5) +
           __builtin_shufflevector(c[2 * i], c[2 * i + 1], 2, 3, 6, 7);
  F16<4> r;
  for (int i = 0; i < 4; ++i)  // lane 0 + lane 1 of each of 4 values
    r.part[i] = __builtin_shufflevector(d[2 * i], d[2 * i + 1], 0, 2, 4, 6) +
                __builtin_shufflevector(d[2 * i], d[2 * i + 1], 1, 3, 5, 7);
  return r;
}

// e^x of each lane of a native vector, within 2 ulp of the exact value for normal results
// (Cody-Waite reduction x = n·ln2 + r, |r| <= ln2/2, then a degree-7 polynomial, Cephes' expf
// coefficients, and an exact scaling by 2^n). Only fused multiply-adds, multiplies, adds,
// compares and integer bit operations, each rounded per IEEE: the same bits at every vector
// width, unlike the libm call (std::exp) it replaces in softmax, attention and SiLU, one scalar
// call per element. Limits as expf: +inf above 88.72, 0 below -103.97 (subnormals from
// -87.34), NaN stays NaN.
// Cost: prompt attention computes one e^x per query vector and position, beside 2 · head_dim
// multiply-adds. With separate multiplies and adds (36 vector instructions on AVX-512) the
// exponentials took 10 % of attention at n = 4096 on Zen 4 (xtile_attention_bench with e^x
// replaced by a multiply: 379 -> 345 ms); fused (21 instructions, VSCALEFPS for the scaling)
// 362-374 ms, and qwen3-0.6b Q8_0 pp4096 239 -> 250 t/s (docs/PERF.md, twenty-eighth session).
template <int W>
XTILE_LANES_INLINE Native<W> exp_native(Native<W> x) {
  using V = Native<W>;
  using I = NativeInt<W>;
  const V max_x = V{} + 88.72283935546875f, min_x = V{} - 103.972084045410156f;
  // Clamped into [min_x, max_x] (a compare and a masked move each on AVX-512). A NaN becomes
  // min_x here; the last line returns it as NaN.
  const V lo = x > min_x ? x : min_x;
  const V xc = lo < max_x ? lo : max_x;
  // n = nearest integer to x·log2(e): adding and subtracting 1.5·2^23 rounds to even.
  const V round_magic = V{} + 12582912.0f;
  const V n = fma_native<W>(xc, V{} + 1.44269502162933349609375f, round_magic) - round_magic;
  // r = x − n·ln2 with ln2 split in two (the first part has 9 bits: n·part is exact).
  const V r = fma_native<W>(n, V{} + 2.12194440e-4f, fma_native<W>(n, V{} - 0.693359375f, xc));
  V p = V{} + 1.9875691500e-4f;
  p = fma_native<W>(p, r, V{} + 1.3981999507e-3f);
  p = fma_native<W>(p, r, V{} + 8.3334519073e-3f);
  p = fma_native<W>(p, r, V{} + 4.1665795894e-2f);
  p = fma_native<W>(p, r, V{} + 1.6666665459e-1f);
  p = fma_native<W>(p, r, V{} + 5.0000001201e-1f);
  const V y = fma_native<W>(p, r * r, r) + 1.0f;
  // y · 2^n rounded once. n in [-150, 128]; as 2^a · 2^b, a = n >> 1, b = n − a, y · 2^a is a
  // normal float (exact) and only the second product rounds, which VSCALEFPS (y · 2^n, one
  // rounding: the same bits, FTZ being off by the float contract) does in one instruction.
  V e;
#if defined(__AVX512F__)
  if constexpr (W == 16) {
    asm("vscalefps %2, %1, %0" : "=v"(e) : "v"(y), "v"(n));
  } else
#endif
  {
    const I ni = __builtin_convertvector(n, I);
    const I a = ni >> 1, b = ni - a;
    e = (y * (V)((a + 127) << 23)) * (V)((b + 127) << 23);
  }
  // x above max_x or NaN: x · inf, +inf or x's NaN quieted (x + x gives the same NaN).
  return x <= max_x ? e : x * __builtin_inff();
}

template <int W>
XTILE_LANES_INLINE F16<W> exp(const F16<W>& x) {
  F16<W> r;
#pragma GCC unroll 4
  for (int i = 0; i < F16<W>::kParts; ++i) r.part[i] = exp_native<W>(x.part[i]);
  return r;
}

}  // namespace xtile::ops::lanes
