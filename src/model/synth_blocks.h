// Random quantized blocks for `xtile synth`: each quantized type's blocks are drawn directly
// (no float quantization, so even the 30B preset is written in minutes), with scales chosen so
// that the dequantized weights have mean about 0 and standard deviation about kWeightStd, the
// block scales varying by ±25% as real blocks do. Internal to src/model/synth*.cpp.
#pragma once

#include <cstdint>

#include "gguf/ggml_types.h"

namespace xtile::synth {

// wyrand: one multiply per 64 random bits, good statistical quality, trivially seedable.
struct Rng {
  uint64_t state;
  uint64_t next() {
    state += 0xa0761d6478bd642full;
    const __uint128_t m =
        static_cast<__uint128_t>(state) * static_cast<__uint128_t>(state ^ 0xe7037ed1a0b428dbull);
    return static_cast<uint64_t>(m >> 64) ^ static_cast<uint64_t>(m);
  }
  // Uniform in [0, 1) from the top 24 bits (exact in float).
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }
};

inline constexpr float kWeightStd = 0.02f;

// Whether fill_random_blocks writes `type`: every quantized type xtile writes (Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS).
bool has_random_blocks(GgmlType type);

// Writes n_blocks consecutive GGUF blocks of `type` (ggml_traits(type).type_size bytes each).
void fill_random_blocks(GgmlType type, Rng& rng, uint64_t n_blocks, uint8_t* out);

}  // namespace xtile::synth
