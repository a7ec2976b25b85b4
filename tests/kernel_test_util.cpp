#include "kernel_test_util.h"

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/fp16.h"
#include "kernels/registry.h"
#include "quant/quant.h"

namespace xtile::test {

namespace {
namespace kernel_test_util {  // unity batches: CMakeLists.txt

uint16_t random_scale(std::mt19937& rng) {
  // Magnitudes of real checkpoints' block scales, both signs, a few exact zeros.
  std::uniform_real_distribution<float> mag(1e-4f, 5e-2f);
  const uint32_t pick = rng() % 64;
  if (pick == 0) return 0;
  const float v = mag(rng);
  return fp32_to_fp16((pick & 1) ? -v : v);
}

}  // namespace kernel_test_util
}  // namespace

namespace {
namespace kernel_test_util {  // unity batches: CMakeLists.txt

// Where each kind of field sits in one GGUF block of a type (quant/block_formats.h).
struct BlockMap {
  int fp16[2];     // offsets of fp16 scales (d, and dmin / m), -1 if absent
  int scales[2];   // [begin, end) of integer scale codes (K-quants, Q6_K, IQ4_XS), or {0, 0}
  int quants[2];   // [begin, end) of the element codes (qs, qh, ql)
  bool int8_scales;  // Q6_K: the scale codes are int8 (its extremes are -128 and 127)
};

BlockMap block_map(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return {{0, -1}, {0, 0}, {2, 34}, false};
    case GgmlType::Q4_0:
    case GgmlType::IQ4_NL: return {{0, -1}, {0, 0}, {2, 18}, false};
    case GgmlType::Q4_1: return {{0, 2}, {0, 0}, {4, 20}, false};
    case GgmlType::Q5_0: return {{0, -1}, {0, 0}, {2, 22}, false};
    case GgmlType::Q5_1: return {{0, 2}, {0, 0}, {4, 24}, false};
    case GgmlType::Q4_K: return {{0, 2}, {4, 16}, {16, 144}, false};
    case GgmlType::Q5_K: return {{0, 2}, {4, 16}, {16, 176}, false};
    case GgmlType::Q6_K: return {{208, -1}, {192, 208}, {0, 192}, true};
    case GgmlType::IQ4_XS: return {{0, -1}, {2, 8}, {8, 136}, false};
    default: throw Error("random_weights: no block map for " + std::string(ggml_type_name(t)));
  }
}

void put_fp16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

}  // namespace kernel_test_util
}  // namespace

std::vector<uint8_t> random_weights(GgmlType type, int64_t n, int64_t k, uint32_t seed,
                                    WeightPattern pattern) {
  using namespace kernel_test_util;  // this file's helpers
  std::mt19937 rng(seed);
  const GgmlTypeTraits& tr = ggml_traits(type);
  const BlockMap map = block_map(type);
  const int64_t blocks = n * (k / tr.block_size);
  std::vector<uint8_t> out(static_cast<size_t>(blocks) * tr.type_size);
  for (int64_t i = 0; i < blocks; ++i) {
    uint8_t* blk = out.data() + i * tr.type_size;
    for (int f = 0; f < 2; ++f)
      if (map.fp16[f] >= 0)
        put_fp16(blk + map.fp16[f], pattern == WeightPattern::random
                                        ? random_scale(rng)
                                        : fp32_to_fp16(i % 2 ? -0.03f : 0.05f));
    // The largest scale codes for the extreme patterns (6-bit fields: all ones; Q6_K's int8:
    // -128 for all_min, 127 for all_max), random ones otherwise.
    for (int b = map.scales[0]; b < map.scales[1]; ++b) {
      uint8_t v = static_cast<uint8_t>(rng());
      if (pattern == WeightPattern::all_min) v = map.int8_scales ? 0x80 : 0xff;
      if (pattern == WeightPattern::all_max) v = map.int8_scales ? 0x7f : 0xff;
      if (pattern == WeightPattern::zeros) v = 0;
      if (pattern == WeightPattern::alternating_extremes)
        v = map.int8_scales ? ((b + i) % 2 ? 0x80 : 0x7f) : 0xff;
      blk[b] = v;
    }
    for (int b = map.quants[0]; b < map.quants[1]; ++b) {
      uint8_t v = 0;
      switch (pattern) {
        case WeightPattern::random: v = static_cast<uint8_t>(rng()); break;  // incl. -128
        case WeightPattern::all_min: v = type == GgmlType::Q8_0 ? 0x80 : 0x00; break;
        case WeightPattern::all_max: v = type == GgmlType::Q8_0 ? 0x7f : 0xff; break;
        case WeightPattern::zeros: v = type == GgmlType::Q4_0 ? 0x88 : 0x00; break;
        case WeightPattern::alternating_extremes:
          if (type == GgmlType::Q8_0)
            v = (b + i) % 3 == 0 ? 0x80 : (b % 3 == 1 ? 0x7f : 0x81);  // -128, 127, -127
          else
            v = (b + i) % 2 ? 0x0f : 0xf0;
          break;
      }
      blk[b] = v;
    }
  }
  return out;
}

std::vector<float> random_activations(int64_t m, int64_t k, uint32_t seed, ActPattern pattern) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto normal_dist = [&](std::mt19937& g) { return normal(g); };
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
        case ActPattern::specials: {
          // Blocks of denormals (1/d overflows: q = 0), blocks with a NaN (ignored by amax, q = 0)
          // and blocks of the smallest normals, between ordinary ones. Finite amax everywhere,
          // so the matmul results stay finite and comparable with memcmp.
          const int64_t blk = i / kQK;
          const float normal = normal_dist(rng);
          switch ((blk + r) % 4) {
            case 0: v = normal * 1e-39f; break;                         // denormal
            case 1: v = i % kQK == 7 ? std::nanf("") : normal; break;   // one NaN
            case 2: v = normal * 1.2e-38f; break;                       // tiny normals
            default: v = normal; break;
          }
          break;
        }
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
