// The ref tier: the definition of DESIGN.md §3 and quant/weight_terms.h, written as plainly as
// possible. Slow.
#pragma once

#include "kernels/kernel_api.h"

namespace xtile::ref {

void quantize_row(const float* x, int64_t k, int8_t* q, float* d, int32_t* s);
// Every quantized weight type, read from its GGUF rows layout (<type>_rows) or, for tests of
// the packing, from any layout through packed_terms; any M.
void matmul(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
            int64_t m1, int64_t n0, int64_t n1);

// The registry's ref kernel of one type: checks that w is in that type's rows layout (as every
// kernel checks its layout), then matmul.
template <GgmlType T>
void matmul_rows(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
                 int64_t m1, int64_t n0, int64_t n1);

}  // namespace xtile::ref
