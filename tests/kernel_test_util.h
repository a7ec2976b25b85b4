// Random quantized weights and activations for the kernel exactness tests (seeded, reproducible).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include <string>

#include "cpu/cpu_caps.h"
#include "gguf/ggml_types.h"

namespace xtile::test {

// n rows × k of GGML blocks (any quantized weight type) as GGUF stores them: random codes and
// scale codes, random fp16 scales of both signs (some zero). `pattern` selects extreme data
// instead: every code at its minimum / maximum with the largest scale codes, zeros, or
// alternating extremes:
enum class WeightPattern { random, all_min, all_max, zeros, alternating_extremes };
std::vector<uint8_t> random_weights(GgmlType type, int64_t n, int64_t k, uint32_t seed,
                                    WeightPattern pattern = WeightPattern::random);

enum class ActPattern {
  random,
  extremes,  // every block at ±127
  zeros,
  ties,      // .5 cases
  specials,  // denormal blocks, NaN elements, smallest normals (finite results)
};
std::vector<float> random_activations(int64_t m, int64_t k, uint32_t seed,
                                      ActPattern pattern = ActPattern::random);

// Why `tier` cannot run weight type `type` here ("" when it can): the CPU lacks it, or the
// registry has no kernel for the type.
std::string tier_unavailable(Tier tier, GgmlType type);

}  // namespace xtile::test
