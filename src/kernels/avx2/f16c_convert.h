// fp16 <-> fp32 through the F16C instructions (VCVTPH2PS, VCVTPS2PH with imm 0 = round to nearest
// even). The oracle that base/fp16.h's scalar conversions are tested against, and the fast path
// of ops::f16_to_f32_row / f32_to_f16_row (the KV cache) on CPUs that have it; call these only
// when f16c_convert_usable(cpu_caps()) is true (they are VEX-encoded).
//
// This translation unit is built with -mavx -mf16c only (CMakeLists.txt, target xtile_f16c), not
// with the avx2 tier's flags: F16C came with Ivy Bridge, a generation before AVX2 and FMA, and the
// compiler may use any instruction its flags allow anywhere in the file.
#pragma once

#include <cstdint>

#include "cpu/cpu_caps.h"

namespace xtile::avx2 {

// The ISA extensions f16c_convert.cpp was compiled for, read from the compiler's macros there.
// Data, not code: it is read by portable code before anything in that file may run.
struct F16cObjectIsa {
  bool avx, f16c, avx2, fma, avx512f;
};
extern const F16cObjectIsa kF16cObjectIsa;

// True when the CPU and the OS provide every extension in kF16cObjectIsa (portable code; the
// selection of ops::f16_to_f32_row / f32_to_f16_row).
bool f16c_convert_usable(const CpuCaps& caps);

float f16c_to_fp32(uint16_t h);
uint16_t f16c_from_fp32(float f);

// Bulk forms (8 lanes at a time, scalar tail) so that tests can sweep hundreds of millions of
// values in seconds.
void f16c_to_fp32_n(const uint16_t* x, float* y, int64_t n);
void f16c_from_fp32_n(const float* x, uint16_t* y, int64_t n);

}  // namespace xtile::avx2
