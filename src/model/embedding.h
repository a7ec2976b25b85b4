// One row of a weight matrix as floats, for token_embd lookups. The result is bit-identical
// whichever layout holds the row: both paths read the contract's block terms (exact integers and
// scales, quant/weight_terms.h) and dequantize them with ggml's expression order.
#pragma once

#include <cstdint>

#include "gguf/ggml_types.h"
#include "kernels/kernel_api.h"

namespace xtile {

// Row `row` (< w.n) of a packed matrix (any Layout) into w.k floats.
void dequantize_packed_row(const PackedMatrix& w, int64_t row, float* out);

// Row `row` of a GGUF matrix of `type` (F32, F16, BF16 or any quantized weight type) with k columns.
void dequantize_gguf_row(GgmlType type, const uint8_t* data, int64_t k, int64_t row, float* out);

}  // namespace xtile
