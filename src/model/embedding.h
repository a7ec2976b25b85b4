// One row of a weight matrix as floats, for token_embd lookups. The result is bit-identical
// whichever layout holds the row: dequantize_row_q8_0/q4_0 of the GGUF row (quant.h) compute
// d · q per element, and so does reading the same scale and quant back out of the x16 layout.
#pragma once

#include <cstdint>

#include "gguf/ggml_types.h"
#include "kernels/kernel_api.h"

namespace xtile {

// Row `row` (< w.n) of a packed matrix (any Layout) into w.k floats.
void dequantize_packed_row(const PackedMatrix& w, int64_t row, float* out);

// Row `row` of a GGUF matrix of `type` (F32, F16, BF16, Q8_0, Q4_0) with k columns.
void dequantize_gguf_row(GgmlType type, const uint8_t* data, int64_t k, int64_t row, float* out);

}  // namespace xtile
