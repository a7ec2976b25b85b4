// The amx kernels: one source (amx_gemm.cpp) compiled twice, into xtile::amx (AMX instructions,
// needs AMX-TILE + AMX-INT8 + AVX-512 and the OS's XTILEDATA permission) and xtile::amx_emu
// (software tiles, runs on any x86-64 CPU). Both read the x16 layouts (q8_0_x16 / q4_0_x16) and
// give the bytes of the ref tier (DESIGN.md §3). Design and cycle budget: docs/AMX.md.
#pragma once

#include "kernels/kernel_api.h"

namespace xtile::amx {

// Any M >= 1 (tail rows use tiles of fewer rows); n0 a multiple of 16; K a multiple of 32.
void q8_0_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1);
void q4_0_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1);

}  // namespace xtile::amx

namespace xtile::amx_emu {

// The same kernels on the emulator: the amx-emu tier uses them for GEMV (M = 1) and GEMM.
void q8_0_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1);
void q4_0_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1);

}  // namespace xtile::amx_emu
