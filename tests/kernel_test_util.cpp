#include "kernel_test_util.h"

#include <cstring>

#include "base/error.h"
#include "base/fp16.h"
#include "kernels/registry.h"
#include "quant/quant.h"

namespace xtile::test {

namespace {

uint16_t random_scale(std::mt19937& rng) {
  // Magnitudes of real checkpoints' block scales, both signs, a few exact zeros.
  std::uniform_real_distribution<float> mag(1e-4f, 5e-2f);
  const uint32_t pick = rng() % 64;
  if (pick == 0) return 0;
  const float v = mag(rng);
  return fp32_to_fp16((pick & 1) ? -v : v);
}

}  // namespace

std::vector<uint8_t> random_weights(GgmlType type, int64_t n, int64_t k, uint32_t seed,
                                    WeightPattern pattern) {
  std::mt19937 rng(seed);
  const int64_t nb = k / kQK;
  std::vector<uint8_t> out(ggml_row_bytes(type, k) * static_cast<size_t>(n));
  for (int64_t i = 0; i < n * nb; ++i) {
    const uint16_t d = pattern == WeightPattern::random ? random_scale(rng)
                                                        : fp32_to_fp16(i % 2 ? -0.03f : 0.05f);
    if (type == GgmlType::Q8_0) {
      auto* blk = reinterpret_cast<BlockQ8_0*>(out.data()) + i;
      blk->d = d;
      for (int e = 0; e < kQK; ++e) {
        int8_t v = 0;
        switch (pattern) {
          case WeightPattern::random: v = static_cast<int8_t>(rng()); break;  // incl. -128
          case WeightPattern::all_min: v = -128; break;
          case WeightPattern::all_max: v = 127; break;
          case WeightPattern::zeros: v = 0; break;
          case WeightPattern::alternating_extremes: v = (e + i) % 3 == 0 ? -128 : (e % 3 == 1 ? 127 : -127); break;
        }
        blk->qs[e] = v;
      }
    } else {
      auto* blk = reinterpret_cast<BlockQ4_0*>(out.data()) + i;
      blk->d = d;
      for (int e = 0; e < kQK / 2; ++e) {
        uint8_t v = 0;
        switch (pattern) {
          case WeightPattern::random: v = static_cast<uint8_t>(rng()); break;
          case WeightPattern::all_min: v = 0x00; break;  // every nibble 0: weight -8
          case WeightPattern::all_max: v = 0xff; break;  // every nibble 15: weight 7
          case WeightPattern::zeros: v = 0x88; break;    // weight 0
          case WeightPattern::alternating_extremes: v = (e + i) % 2 ? 0x0f : 0xf0; break;
        }
        blk->qs[e] = v;
      }
    }
  }
  return out;
}

std::vector<float> random_activations(int64_t m, int64_t k, uint32_t seed, ActPattern pattern) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * k));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t i = 0; i < k; ++i) {
      float v = 0.0f;
      switch (pattern) {
        case ActPattern::random: {
          v = normal(rng) * (1.0f + static_cast<float>(r % 5));
          if (rng() % 97 == 0) v = 0.0f;
          if ((i / kQK) % 37 == 5) v = 0.0f;  // some all-zero blocks
          break;
        }
        case ActPattern::extremes:  // amax = |x| everywhere: every q is ±127
          v = ((i * 7 + r) % 3) ? 3.0f : -3.0f;
          break;
        case ActPattern::zeros: v = 0.0f; break;
        case ActPattern::ties: {
          // amax = 127 gives d = 1 and id = 1 exactly: x = j + 0.5 lands on rounding ties.
          const int64_t pos = i % kQK;
          v = pos == 0 ? 127.0f : static_cast<float>(static_cast<int>(rng() % 253) - 126) + 0.5f;
          break;
        }
      }
      x[static_cast<size_t>(r * k + i)] = v;
    }
  return x;
}

std::string tier_unavailable(Tier tier, GgmlType type) {
  const std::string why = cpu_caps().tier_unavailable_reason(tier);
  if (!why.empty()) return why;
  try {
    select_kernels(tier, type);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace xtile::test
