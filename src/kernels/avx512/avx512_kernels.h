// The avx512 tier (AVX-512 F/BW/VL/DQ + VNNI). Compiled only into TUs built with the avx512 flags.
#pragma once

#include "kernels/kernel_api.h"

namespace xtile::avx512 {

void quantize_row(const float* x, int64_t k, int8_t* q, float* d, int32_t* s);
// GEMV and GEMM of each weight type on its x16 layout (one int8 core, avx512_matmul.cpp).
#define XTILE_AVX512_DECLARE(t)                                                                \
  void t##_gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                int64_t m1, int64_t n0, int64_t n1);                                             \
  void t##_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                int64_t m1, int64_t n0, int64_t n1);
XTILE_AVX512_DECLARE(q8_0)
XTILE_AVX512_DECLARE(q4_0)
XTILE_AVX512_DECLARE(q4_1)
XTILE_AVX512_DECLARE(q5_0)
XTILE_AVX512_DECLARE(q5_1)
XTILE_AVX512_DECLARE(iq4_nl)
XTILE_AVX512_DECLARE(q4_k)
XTILE_AVX512_DECLARE(q5_k)
XTILE_AVX512_DECLARE(q6_k)
XTILE_AVX512_DECLARE(iq4_xs)
#undef XTILE_AVX512_DECLARE

}  // namespace xtile::avx512
