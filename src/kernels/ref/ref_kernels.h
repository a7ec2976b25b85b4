// The ref tier: the definition of DESIGN.md §3, written as plainly as possible. Slow.
#pragma once

#include "kernels/kernel_api.h"

namespace xtile::ref {

void quantize_row(const float* x, int64_t k, int8_t* q, float* d, int32_t* s);
// Both read the GGUF rows layouts (q8_0_rows / q4_0_rows); any M.
void q8_0_matmul(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
                 int64_t m1, int64_t n0, int64_t n1);
void q4_0_matmul(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
                 int64_t m1, int64_t n0, int64_t n1);

}  // namespace xtile::ref
