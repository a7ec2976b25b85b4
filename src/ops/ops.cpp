#include "ops/ops.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "kernels/avx2/f16c_convert.h"
#include "ops/lanes16.h"

namespace xtile::ops {

namespace {

// The pairwise fold of the 16 lanes (see ops.h): w = 8, 4, 2, 1.
// Written as four constant-trip loops so that the compiler keeps the lanes in registers (one
// 512/256/128-bit add per step) instead of folding through memory.
inline float fold_lanes(float* acc) {
  static_assert(kLanes == 16);
  for (int j = 0; j < 8; ++j) acc[j] += acc[j + 8];
  for (int j = 0; j < 4; ++j) acc[j] += acc[j + 4];
  for (int j = 0; j < 2; ++j) acc[j] += acc[j + 2];
  return acc[0] + acc[1];
}

}  // namespace

XTILE_FLOAT_CLONES float dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  for (int j = 0; i + j < n; ++j) acc[j] += a[i + j] * b[i + j];
  return fold_lanes(acc);
}

namespace {
// Four rows of dot(), element for element the same operations (one product, one add per lane and
// element, then the same fold), so each result has dot()'s bits.
XTILE_FLOAT_CLONES void dot4(const float* a, int64_t a_stride, const float* b, int64_t n,
                             float* out) {
  const float* a0 = a;
  const float* a1 = a + a_stride;
  const float* a2 = a + 2 * a_stride;
  const float* a3 = a + 3 * a_stride;
  float acc0[kLanes] = {}, acc1[kLanes] = {}, acc2[kLanes] = {}, acc3[kLanes] = {};
  auto step = [&](int64_t i, int j) __attribute__((always_inline)) {
    const float bj = b[i + j];
    acc0[j] += a0[i + j] * bj;
    acc1[j] += a1[i + j] * bj;
    acc2[j] += a2[i + j] * bj;
    acc3[j] += a3[i + j] * bj;
  };
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) step(i, j);
  for (int j = 0; i + j < n; ++j) step(i, j);
  out[0] = fold_lanes(acc0);
  out[1] = fold_lanes(acc1);
  out[2] = fold_lanes(acc2);
  out[3] = fold_lanes(acc3);
}
}  // namespace

void dots(const float* a, int64_t a_stride, int64_t count, const float* b, int64_t n, float* out) {
  int64_t r = 0;
  for (; r + 4 <= count; r += 4) dot4(a + r * a_stride, a_stride, b, n, out + r);
  for (; r < count; ++r) out[r] = dot(a + r * a_stride, b, n);
}

XTILE_FLOAT_CLONES float sum(const float* a, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j];
  for (int j = 0; i + j < n; ++j) acc[j] += a[i + j];
  return fold_lanes(acc);
}

float sum_squares(const float* a, int64_t n) {
  return dot(a, a, n);
}

XTILE_FLOAT_CLONES void bf16_to_f32_row(const uint16_t* x, float* y, int64_t n) {
  // Pieces of one cache line, each requesting the line 8 KiB ahead (the attention converts its
  // KV cache from memory through here; see f16c_convert.cpp).
  for (int64_t i0 = 0; i0 < n; i0 += 32) {
    __builtin_prefetch(x + i0 + 4096);
    const int64_t i1 = std::min(n, i0 + 32);
    for (int64_t i = i0; i < i1; ++i) {
      const uint32_t bits = static_cast<uint32_t>(x[i]) << 16;
      std::memcpy(y + i, &bits, 4);
    }
  }
}

XTILE_FLOAT_CLONES void f16_to_f32_row_portable(const uint16_t* x, float* y, int64_t n) {
  // Branch-free and exact (the same bits as fp16_to_fp32, tested for all 65536 inputs), so that
  // the compiler vectorizes it: the attention reads every cached K and V through here, and a
  // table lookup per element (256 KiB table) costs more than the dot products at long contexts.
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t h = x[i];
    const uint32_t em = h & 0x7fffu;
    const uint32_t exp = em & 0x7c00u;
    const uint32_t normal = (em << 13) + (112u << 23);  // exponent rebiased from 15 to 127
    // NaN stays NaN, quieted (bit 22), as VCVTPH2PS does.
    const uint32_t inf_nan =
        (em << 13) | 0x7f800000u | (static_cast<uint32_t>((em & 0x3ffu) != 0) << 22);
    // Zero and subnormals: mantissa · 2^-24, exact in float.
    const uint32_t sub = std::bit_cast<uint32_t>(static_cast<float>(em) * 0x1p-24f);
    // Selects as masks rather than branches, so the loop has no control flow to vectorize.
    const uint32_t is_inf = 0u - static_cast<uint32_t>(exp == 0x7c00u);
    const uint32_t is_sub = 0u - static_cast<uint32_t>(exp == 0);
    const uint32_t bits = (inf_nan & is_inf) | (sub & is_sub) | (normal & ~(is_inf | is_sub));
    y[i] = std::bit_cast<float>(bits | ((h & 0x8000u) << 16));
  }
}

void f32_to_f16_row_portable(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

// F16C (VCVTPH2PS / VCVTPS2PH, round to nearest even) where the CPU has it: the same bits as
// the portable loops above (tests/fp16_test.cpp: all 65536 halves, and dense and random float
// sets), 8 per instruction. The portable f16 → f32 loop vectorizes but ran at about one element
// per cycle, which made converting a generation step's K and V cost more than its attention.
namespace {
bool use_f16c() {
  static const bool yes = avx2::f16c_convert_usable(cpu_caps());
  return yes;
}

}  // namespace

void f16_to_f32_row(const uint16_t* x, float* y, int64_t n) {
  if (use_f16c())
    avx2::f16c_to_fp32_n(x, y, n);
  else
    f16_to_f32_row_portable(x, y, n);
}

void f32_to_f16_row(const float* x, uint16_t* y, int64_t n) {
  if (use_f16c())
    avx2::f16c_from_fp32_n(x, y, n);
  else
    f32_to_f16_row_portable(x, y, n);
}

void rmsnorm_row(const float* x, const float* w, int64_t n, float eps, float* y) {
  const float mean = sum_squares(x, n) / static_cast<float>(n);
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

void rmsnorm(ThreadPool& pool, const float* x, int64_t ldx, const float* w, int64_t rows, int64_t n,
             float eps, float* y, int64_t ldy) {
  pool.parallel_for(0, rows, row_grain(2 * n), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) rmsnorm_row(x + r * ldx, w, n, eps, y + r * ldy);
  });
}

void rope_inv_freq(double base, int64_t n_rot, const float* freq_factors, double linear_factor,
                   double* inv_freq) {
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    double f = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    if (freq_factors) f /= static_cast<double>(freq_factors[i]);
    inv_freq[i] = f / linear_factor;
  }
}

void rope_cos_sin(int64_t pos, const double* inv_freq, int64_t n_rot, float* cos_out,
                  float* sin_out) {
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double theta = static_cast<double>(pos) * inv_freq[i];
    cos_out[i] = static_cast<float>(std::cos(theta));
    sin_out[i] = static_cast<float>(std::sin(theta));
  }
}

void rope_head(RopeMode mode, float* x, int64_t n_rot, const float* cos_t, const float* sin_t) {
  const int64_t half = n_rot / 2;
  // norm: the pair of index i is (2i, 2i+1); neox: (i, i + half).
  const int64_t stride = mode == RopeMode::norm ? 2 : 1;
  const int64_t offset = mode == RopeMode::norm ? 1 : half;
  for (int64_t i = 0; i < half; ++i) {
    float* a = x + i * stride;
    float* b = a + offset;
    const float x0 = *a, x1 = *b;
    *a = x0 * cos_t[i] - x1 * sin_t[i];
    *b = x0 * sin_t[i] + x1 * cos_t[i];
  }
}

namespace {

template <int W>
XTILE_LANES_INLINE void softmax_row_lanes(float* x, int64_t n) {
  // The maximum, 16 lanes at a time: every lane starts at x[0] and keeps the larger value, so
  // a NaN counts only in x[0], as in the one-at-a-time loop; equal values (±0) may come from
  // another element, which cannot change x − max.
  lanes::F16<W> vmax = lanes::splat<W>(x[0]);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) vmax = lanes::max(vmax, lanes::load<W>(x + i));
  float max = lanes::lane(vmax, 0);
  for (int j = 1; j < 16; ++j) max = lanes::lane(vmax, j) > max ? lanes::lane(vmax, j) : max;
  for (; i < n; ++i) max = x[i] > max ? x[i] : max;
  vmax = lanes::splat<W>(max);
  i = 0;
  for (; i + 16 <= n; i += 16) lanes::store(x + i, lanes::exp(lanes::load<W>(x + i) - vmax));
  for (; i < n; ++i) {  // the tail: the same lanes, one element in a padded value
    lanes::F16<W> v = lanes::zero<W>();
    v.part[0][0] = x[i];
    x[i] = lanes::lane(lanes::exp(v - vmax), 0);
  }
  const float inv = 1.0f / sum(x, n);
  for (i = 0; i < n; ++i) x[i] *= inv;
}

template <int W>
XTILE_LANES_INLINE void swiglu_row_lanes(const float* gate, const float* up, float* out,
                                         int64_t n) {
  const lanes::F16<W> one = lanes::splat<W>(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const lanes::F16<W> g = lanes::load<W>(gate + i);
    lanes::store(out + i, (g / (one + lanes::exp(lanes::zero<W>() - g))) * lanes::load<W>(up + i));
  }
  for (; i < n; ++i) {  // the tail: the same lanes, one element in a padded value
    lanes::F16<W> g = lanes::zero<W>();
    g.part[0][0] = gate[i];
    out[i] =
        lanes::lane((g / (one + lanes::exp(lanes::zero<W>() - g))) * lanes::splat<W>(up[i]), 0);
  }
}

// The scalar loop `best = 0; if (x[i] > x[best]) best = i` in two passes: the largest value 16
// lanes at a time (no dependency from one element to the next), then the first element equal
// to it. Same index: the loop keeps the first of the maximal values, and NaN elements never win
// (nothing compares greater than a NaN x[0] either, hence 0 then); ±0 compare equal in both.
// A server samples 8 rows of a 151936-token vocabulary per step (4.9 MB, from L3): 540 µs with
// the one-at-a-time loop, 464 with these passes on one thread of the AMX VM (the rows' reads
// bound both).
template <int W>
XTILE_LANES_INLINE int64_t argmax_lanes(const float* x, int64_t n) {
  if (n <= 1 || std::isnan(x[0])) return 0;
  lanes::F16<W> vmax = lanes::splat<W>(x[0]);  // every lane starts at x[0]: never NaN
  int64_t i = 1;
  for (; i + 16 <= n; i += 16) vmax = lanes::max(vmax, lanes::load<W>(x + i));
  float max = lanes::max_lane(vmax);
  for (; i < n; ++i) max = x[i] > max ? x[i] : max;
  for (i = 0; x[i] != max; ++i) {
  }
  return i;
}

template <int W>
XTILE_LANES_INLINE int width_of() {
  return W;
}

XTILE_LANES_VERSIONS(void, softmax_row_cpu, (float* x, int64_t n), softmax_row_lanes, (x, n))
XTILE_LANES_VERSIONS(void, swiglu_row_cpu,
                     (const float* gate, const float* up, float* out, int64_t n), swiglu_row_lanes,
                     (gate, up, out, n))
XTILE_LANES_VERSIONS(int, lanes_width_cpu, (), width_of, ())
XTILE_LANES_VERSIONS(int64_t, argmax_cpu, (const float* x, int64_t n), argmax_lanes, (x, n))

}  // namespace

// GCC emits the dispatcher (an ifunc) of target-attribute versions only in a translation unit
// that calls them: a caller elsewhere, which sees only ops.h, linked to the "default" version,
// so SwiGLU and softmax ran 4 lanes at a time on every CPU (6 % of a prompt on Zen 5). These
// plain functions are that call.
void softmax_row(float* x, int64_t n) {
  softmax_row_cpu(x, n);
}
void swiglu_row(const float* gate, const float* up, float* out, int64_t n) {
  swiglu_row_cpu(gate, up, out, n);
}
int lanes_width() {
  return lanes_width_cpu();
}

int64_t argmax(const float* x, int64_t n) {
  return argmax_cpu(x, n);
}

}  // namespace xtile::ops
