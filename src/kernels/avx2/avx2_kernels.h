// The avx2 tier (AVX2 + FMA + F16C). Compiled only into TUs built with the avx2 flags.
#pragma once

#include "kernels/kernel_api.h"

namespace xtile::avx2 {

void quantize_row(const float* x, int64_t k, int8_t* q, float* d, int32_t* s);
// Read the x16 layouts (q8_0_x16 / q4_0_x16).
// GEMV and GEMM of each weight type on its x16 layout (one int8 core, avx2_matmul.cpp).
#define XTILE_AVX2_DECLARE(t)                                                                  \
  void t##_gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                int64_t m1, int64_t n0, int64_t n1);                                             \
  void t##_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                int64_t m1, int64_t n0, int64_t n1);
XTILE_AVX2_DECLARE(q8_0)
XTILE_AVX2_DECLARE(q4_0)
XTILE_AVX2_DECLARE(q4_1)
XTILE_AVX2_DECLARE(q5_0)
XTILE_AVX2_DECLARE(q5_1)
XTILE_AVX2_DECLARE(iq4_nl)
XTILE_AVX2_DECLARE(q4_k)
XTILE_AVX2_DECLARE(q5_k)
XTILE_AVX2_DECLARE(q6_k)
XTILE_AVX2_DECLARE(iq4_xs)
#undef XTILE_AVX2_DECLARE

}  // namespace xtile::avx2
