// IQ4_NL and IQ4_XS: 4-bit indices into the non-linear codebook kIq4Values, as llama-quantize
// writes them without an imatrix (ggml's quantize_iq4_nl / quantize_iq4_xs with no weights, both
// searching 15 candidate scales per 32-element block; x² is the importance of each element).
// IQ4_NL stores each block's scale in fp16; IQ4_XS stores one fp16 scale per 256 elements and a
// 6-bit signed multiplier of it per 32-element block, then re-picks the indices for that.
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/fp16.h"
#include "quant/quant_rounding.h"
#include "quant/quantize_types.h"

namespace xtile {

namespace {

constexpr int kBlock = 32;
constexpr int kSearch = 7;  // candidate scales: the codebook's end moved by −7..+7 steps

// Index of the codebook value nearest v (the higher one on ties), by bisection of the sorted
// codebook; below the first / above the last value clamps to the ends.
int nearest_index(float v) {
  if (v <= kIq4Values[0]) return 0;
  if (v >= kIq4Values[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < kIq4Values[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return v - kIq4Values[hi - 1] < kIq4Values[hi] - v ? hi - 1 : hi;
}

// The best scale of one 32-element block in float: starts with the block's extreme value mapped
// to the codebook's −127 end, then tries 1/scale = (−127 + t)/max for t = −7..7 and keeps the
// scale that maximises (Σ w·q·x)²/Σ w·q² (weights w = x²), the least-squares scale of that
// assignment. Returns 0 for an all-(near-)zero block. The indices chosen here are discarded:
// both types re-pick them against the scale as stored.
float best_block_scale(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < kBlock; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  if (amax < 1e-15f) return 0.0f;  // ggml's GROUP_MAX_EPS
  // Weighted sums of the assignment given by inverse scale id.
  auto sums = [x](float id, float* sumqx, float* sumq2) {
    float qx = 0, q2 = 0;
    for (int j = 0; j < kBlock; ++j) {
      const float q = kIq4Values[nearest_index(id * x[j])];
      const float w = x[j] * x[j];
      qx += w * q * x[j];
      q2 += w * q * q;
    }
    *sumqx = qx;
    *sumq2 = q2;
  };
  float sumqx, sumq2;
  const float d0 = -max / static_cast<float>(kIq4Values[0]);
  sums(1 / d0, &sumqx, &sumq2);
  float d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
  float best = d * sumqx;
  for (int t = -kSearch; t <= kSearch; ++t) {
    const float id = static_cast<float>(t + kIq4Values[0]) / max;
    sums(id, &sumqx, &sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// Indices for 32 elements under inverse scale id, packed as Q4_0 packs nibbles: element j < 16
// in the low nibble of byte j, element j + 16 in its high nibble.
void pack_indices(const float* x, float id, uint8_t* qs) {
  for (int j = 0; j < kBlock / 2; ++j) {
    const int lo = nearest_index(id * x[j]);
    const int hi = nearest_index(id * x[j + kBlock / 2]);
    qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

void check_row_length(const char* what, int64_t k, int multiple) {
  if (k < 0 || k % multiple != 0)
    fail(what, ": row length ", k, " is not a non-negative multiple of ", multiple);
}

}  // namespace

void quantize_row_iq4_nl(const float* x, BlockIq4Nl* y, int64_t k) {
  check_row_length("quantize_row_iq4_nl", k, kBlock);
  for (int64_t b = 0; b < k / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    const float d = best_block_scale(xb);
    y[b].d = fp32_to_fp16(d);
    // The indices follow the float scale (not its fp16 rounding), as in ggml.
    pack_indices(xb, d != 0 ? 1 / d : 0.0f, y[b].qs);
  }
}

void quantize_row_iq4_xs(const float* x, BlockIq4Xs* y, int64_t k) {
  check_row_length("quantize_row_iq4_xs", k, kQK_K);
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float* xs = x + i * kQK_K;
    BlockIq4Xs& b = y[i];
    float scales[8];
    float max_scale = 0, amax_scale = 0;  // the signed block scale of largest magnitude
    for (int j = 0; j < 8; ++j) {
      scales[j] = best_block_scale(xs + kBlock * j);
      if (std::fabs(scales[j]) > amax_scale) {
        amax_scale = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    // That scale becomes multiplier −32 (the 6-bit range is −32..31) of the superblock scale d.
    const float d = -max_scale / 32;
    b.d = fp32_to_fp16(d);
    const float id = d != 0 ? 1 / d : 0.0f;
    b.scales_h = 0;
    std::memset(b.scales_l, 0, sizeof(b.scales_l));
    for (int j = 0; j < 8; ++j) {
      int l = qround::nearest_int(id * scales[j]);
      l = l < -32 ? -32 : (l > 31 ? 31 : l);
      const float dl = d * static_cast<float>(l);
      pack_indices(xs + kBlock * j, dl != 0 ? 1 / dl : 0.0f, b.qs + 16 * j);
      const int ls = l + 32;  // stored biased: 0..63
      b.scales_l[j / 2] |= static_cast<uint8_t>((ls & 0x0f) << (4 * (j % 2)));
      b.scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * j));
    }
  }
}

}  // namespace xtile
