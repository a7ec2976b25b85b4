// The amx kernels: one source (amx_gemm.cpp) compiled twice, into xtile::amx (AMX instructions,
// needs AMX-TILE + AMX-INT8 + AVX-512 and the OS's XTILEDATA permission) and xtile::amx_emu
// (software tiles, runs on any x86-64 CPU). Both read the x16 layouts of the 32-wide types and
// give the bytes of the ref tier (quant/weight_terms.h). Design and cycle budget: docs/AMX.md.
#pragma once

#include "kernels/kernel_api.h"

// GEMM of each x16 weight type on its layout (amx_gemm.cpp).
#define XTILE_AMX_DECLARE(t)                                                                   \
  void t##_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                int64_t m1, int64_t n0, int64_t n1);

namespace xtile::amx {

// The tier's ceiling probe (amx_probe.cpp): `iterations` × 4 TDPBSSD, each of an A tile of
// `rows` × `k_bytes` (full: 16 × 64) by a B tile of k_bytes / 4 rows × 64 bytes, 4 · rows · 16 ·
// k_bytes multiply-adds in all; returns the sum of two of the C tiles' int32 (rows 1..16,
// k_bytes a multiple of 4 up to 64: measure_amx_tile_ops checks, on the portable side, since a
// throw here would instantiate error.h's templates in an AMX object).
int64_t tdp_loop(int64_t iterations, int rows = 16, int k_bytes = 64);

XTILE_AMX_DECLARE(q8_0)
XTILE_AMX_DECLARE(q4_0)
XTILE_AMX_DECLARE(q4_1)
XTILE_AMX_DECLARE(q5_0)
XTILE_AMX_DECLARE(q5_1)
XTILE_AMX_DECLARE(iq4_nl)
XTILE_AMX_DECLARE(q4_k)
XTILE_AMX_DECLARE(q5_k)
XTILE_AMX_DECLARE(q6_k)
XTILE_AMX_DECLARE(iq4_xs)

}  // namespace xtile::amx

namespace xtile::amx_emu {

int64_t tdp_loop(int64_t iterations, int rows = 16, int k_bytes = 64);  // never timed

XTILE_AMX_DECLARE(q8_0)
XTILE_AMX_DECLARE(q4_0)
XTILE_AMX_DECLARE(q4_1)
XTILE_AMX_DECLARE(q5_0)
XTILE_AMX_DECLARE(q5_1)
XTILE_AMX_DECLARE(iq4_nl)
XTILE_AMX_DECLARE(q4_k)
XTILE_AMX_DECLARE(q5_k)
XTILE_AMX_DECLARE(q6_k)
XTILE_AMX_DECLARE(iq4_xs)

}  // namespace xtile::amx_emu

#undef XTILE_AMX_DECLARE
