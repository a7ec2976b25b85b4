// fp16 <-> fp32 through the F16C instructions (VCVTPH2PS, VCVTPS2PH with imm 0 = round to nearest
// even). The oracle that base/fp16.h's scalar conversions are tested against, and the fast path
// of ops::f16_to_f32_row / f32_to_f16_row (the KV cache) on CPUs that have it; call these only
// when cpu_caps() reports F16C and OS-enabled AVX state (they are VEX-encoded).
#pragma once

#include <cstdint>

namespace xtile::avx2 {

float f16c_to_fp32(uint16_t h);
uint16_t f16c_from_fp32(float f);

// Bulk forms (8 lanes at a time, scalar tail) so that tests can sweep hundreds of millions of
// values in seconds.
void f16c_to_fp32_n(const uint16_t* x, float* y, int64_t n);
void f16c_from_fp32_n(const float* x, uint16_t* y, int64_t n);

}  // namespace xtile::avx2
