// Q4_K, Q5_K, Q6_K by ggml's reference rules (quantize_row_q4_K_ref / q5_K_ref / q6_K_ref, what
// llama-quantize runs without an imatrix). Two steps per 256-element superblock:
//  1. fit each sub-block on its own in float (Q4_K/Q5_K: scale and min of 32 elements by a
//     weighted least-squares search; Q6_K: a symmetric scale of 16 elements);
//  2. express the sub-block scales as small integers times one fp16 superblock scale, then
//     re-round every element against the scale as it will be dequantized.
// Float expressions keep ggml's operand order: with -ffp-contract=off they round identically,
// which is what makes the bytes equal to ggml's.
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/fp16.h"
#include "quant/quant_rounding.h"
#include "quant/quantize_types.h"

namespace xtile {

namespace {

using qround::nearest_int;

void check_row_length(const char* what, int64_t k) {
  if (k < 0 || k % kQK_K != 0)
    fail(what, ": row length ", k, " is not a non-negative multiple of ", kQK_K);
}

int clamp_int(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// Search parameters of the scale/min fit (ggml's make_qkx2_quants arguments): candidate inverse
// scales (nmax + rmin + rdelta·i) / (max − min) for i = 0..nstep.
struct MinFitGrid {
  int nmax;  // largest quant: 15 (Q4_K) or 31 (Q5_K)
  float rmin, rdelta;
  int nstep;
};
constexpr MinFitGrid kQ4Grid{15, -1.0f, 0.1f, 20};
constexpr MinFitGrid kQ5Grid{31, -0.5f, 0.1f, 15};

// Fits x[i] ≈ scale·L[i] − min_out (L in 0..nmax, min_out >= 0) to n elements, minimising
// Σ w[i]·(error)². Starts from the plain range split [lo, hi]; for each candidate inverse scale,
// rounds the quants, solves the 2×2 weighted least-squares system for scale and offset (offset
// capped at 0, i.e. the min never goes above zero) and keeps the candidate if its error is lower.
// As in ggml, a kept candidate's offset becomes the new `lo`: later candidates round relative to
// it and divide by (hi − lo) with it, so the grid moves as the search improves.
// Returns the scale and writes the chosen L and −offset.
float fit_scale_and_min(int n, const MinFitGrid& g, const float* x, const float* w, uint8_t* L,
                        float* min_out) {
  float lo = x[0], hi = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;  // the offset is −min·dmin ≤ 0: a positive block still starts at zero
  if (hi == lo) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *min_out = -lo;
    return 0.0f;
  }
  float iscale = static_cast<float>(g.nmax) / (hi - lo);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - lo)), 0, g.nmax));
    const float diff = scale * static_cast<float>(L[i]) + lo - x[i];
    best_error += w[i] * (diff * diff);
  }
  uint8_t trial[32];
  for (int step = 0; step <= g.nstep; ++step) {
    iscale =
        (g.rmin + g.rdelta * static_cast<float>(step) + static_cast<float>(g.nmax)) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - lo)), 0, g.nmax);
      trial[i] = static_cast<uint8_t>(l);
      const float fl = static_cast<float>(l);
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_offset = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_offset > 0) {
      this_offset = 0;
      this_scale = sum_xl / sum_l2;
    }
    float error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * static_cast<float>(trial[i]) + this_offset - x[i];
      error += w[i] * (diff * diff);
    }
    if (error < best_error) {
      std::memcpy(L, trial, static_cast<size_t>(n));
      best_error = error;
      scale = this_scale;
      lo = this_offset;
    }
  }
  *min_out = -lo;
  return scale;
}

// Symmetric fit of n elements (ggml's make_qx_quants with x² weights): quants l in −nmax..nmax−1
// (stored as l + nmax), scale chosen among inverse scales −(nmax + 0.1·s)/max, s = −9..9, by the
// weighted least-squares criterion (Σwxl)²/Σwl². Returns the scale (0 for an all-zero block).
float fit_symmetric_scale(int n, int nmax, const float* x, int8_t* L) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // ggml's GROUP_MAX_EPS: treat as all zero
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  auto quant = [nmax](float iscale, float v) {
    return clamp_int(nearest_int(iscale * v), -nmax, nmax - 1);
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = quant(iscale, x[i]);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    const float fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int s = -9; s <= 9; ++s) {
    if (s == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(s)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float fl = static_cast<float>(quant(iscale, x[i]));
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(quant(iscale, x[i]) + nmax);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Writes sub-block j's 6-bit scale and min into the 12 packed bytes (the inverse of
// kquant_scale_min): j < 4 in the low 6 bits of bytes j and j + 4; j >= 4 as low nibbles in byte
// j + 4 and their top two bits in the spare high bits of bytes j − 4 and j. Bytes must start 0.
void pack_scale_min(uint8_t* s, int j, uint8_t sc, uint8_t m) {
  if (j < 4) {
    s[j] = sc;
    s[j + 4] = m;
  } else {
    s[j + 4] = static_cast<uint8_t>((sc & 0x0f) | ((m & 0x0f) << 4));
    s[j - 4] |= static_cast<uint8_t>((sc >> 4) << 6);
    s[j] |= static_cast<uint8_t>((m >> 4) << 6);
  }
}

// Steps shared by Q4_K and Q5_K for one superblock: fits the 8 sub-blocks, stores d, dmin and the
// 6-bit scales/mins in `b`, and leaves each element's quant (0..nmax) in L.
template <typename Block>
void quantize_superblock_with_mins(const float* x, const MinFitGrid& g, Block* b, uint8_t* L) {
  float scales[8], mins[8], w[32];
  float max_scale = 0, max_min = 0;  // scales are positive: the min absorbs the offset
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    // Weights |x| + RMS of the sub-block: large elements matter more, small ones still count.
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_and_min(32, g, xs, w, L + 32 * j, &mins[j]);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(b->scales, 0, sizeof(b->scales));
  for (int j = 0; j < 8; ++j) {
    // ggml narrows to uint8_t before capping at 63 (the product never exceeds 63.5 anyway).
    uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    if (ls > 63) ls = 63;
    if (lm > 63) lm = 63;
    pack_scale_min(b->scales, j, ls, lm);
  }
  b->d = fp32_to_fp16(max_scale / 63.f);
  b->dmin = fp32_to_fp16(max_min / 63.f);
  // Re-round against the scale and min as stored. A sub-block whose scale rounded to zero keeps
  // the quants of its own fit (they dequantize to −min either way).
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    kquant_scale_min(b->scales, j, &sc, &m);
    const float d = fp16_to_fp32(b->d) * static_cast<float>(sc);
    if (d == 0) continue;
    const float dm = fp16_to_fp32(b->dmin) * static_cast<float>(m);
    for (int i = 0; i < 32; ++i)
      L[32 * j + i] =
          static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + i] + dm) / d), 0, g.nmax));
  }
}

}  // namespace

void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t k) {
  check_row_length("quantize_row_q4_k", k);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float* xb = x + i * kQK_K;
    uint8_t L[kQK_K];
    quantize_superblock_with_mins(xb, kQ4Grid, &y[i], L);
    // 4 chunks of 64 elements: the first 32 in the low nibbles, the next 32 in the high ones.
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l)
        y[i].qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t k) {
  check_row_length("quantize_row_q5_k", k);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float* xb = x + i * kQK_K;
    uint8_t L[kQK_K];
    quantize_superblock_with_mins(xb, kQ5Grid, &y[i], L);
    // As Q4_K's nibbles, plus the fifth bit of chunk c's element l in qh[l] bit 2c (first 32)
    // or bit 2c + 1 (next 32).
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t a = L[64 * c + l], b = L[64 * c + 32 + l];
        y[i].qs[32 * c + l] = static_cast<uint8_t>((a & 0x0f) | ((b & 0x0f) << 4));
        y[i].qh[l] |= static_cast<uint8_t>(((a >> 4) << (2 * c)) | ((b >> 4) << (2 * c + 1)));
      }
    }
  }
}

void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t k) {
  check_row_length("quantize_row_q6_k", k);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float* xb = x + i * kQK_K;
    int8_t L[kQK_K];  // quants + 32, i.e. 0..63
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;  // the signed scale of largest magnitude
    for (int s = 0; s < 16; ++s) {
      scales[s] = fit_symmetric_scale(16, 32, xb + 16 * s, L + 16 * s);
      if (std::fabs(scales[s]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[s]);
        max_scale = scales[s];
      }
    }
    BlockQ6_K& b = y[i];
    if (max_abs_scale < 1e-15f) {  // all (near) zero: an all-zero block
      std::memset(&b, 0, sizeof(b));
      continue;
    }
    // The largest sub-scale maps to −128 so that the int8 scales use their whole range.
    const float iscale = -128.f / max_scale;
    b.d = fp32_to_fp16(1 / iscale);
    for (int s = 0; s < 16; ++s) {
      const int v = nearest_int(iscale * scales[s]);
      b.scales[s] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int s = 0; s < 16; ++s) {
      const float d = fp16_to_fp32(b.d) * static_cast<float>(b.scales[s]);
      if (d == 0) continue;  // keeps the fit's quants; they dequantize to 0
      for (int l = 0; l < 16; ++l)
        L[16 * s + l] =
            static_cast<int8_t>(clamp_int(nearest_int(xb[16 * s + l] / d), -32, 31) + 32);
    }
    // Two halves of 128: elements l, l+32, l+64, l+96 share ql[l], ql[l+32] (low/high nibbles)
    // and qh[l] (two bits each).
    for (int h = 0; h < 2; ++h) {
      const int8_t* q = L + 128 * h;
      uint8_t* ql = b.ql + 64 * h;
      uint8_t* qh = b.qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        const int q0 = q[l], q1 = q[l + 32], q2 = q[l + 64], q3 = q[l + 96];
        ql[l] = static_cast<uint8_t>((q0 & 0x0f) | ((q2 & 0x0f) << 4));
        ql[l + 32] = static_cast<uint8_t>((q1 & 0x0f) | ((q3 & 0x0f) << 4));
        qh[l] = static_cast<uint8_t>((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) |
                                     ((q3 >> 4) << 6));
      }
    }
  }
}

}  // namespace xtile
