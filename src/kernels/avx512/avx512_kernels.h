// The avx512 tier (AVX-512 F/BW/VL/DQ + VNNI). Compiled only into TUs built with the avx512 flags.
#pragma once

#include "kernels/kernel_api.h"

namespace xtile::avx512 {

void quantize_row(const float* x, int64_t k, int8_t* q, float* d, int32_t* s);
// Read the x16 layouts (q8_0_x16 / q4_0_x16).
void q8_0_gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1);
void q8_0_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1);
void q4_0_gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1);
void q4_0_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1);

}  // namespace xtile::avx512
