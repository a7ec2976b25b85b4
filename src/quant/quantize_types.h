// Quantizers for the weight types beyond Q8_0/Q4_0 (quant.h): ggml's reference rules without an
// importance matrix, i.e. what llama-quantize runs when no imatrix is given. Each one produces
// the same bytes as ggml for the same float input (the project builds with -ffp-contract=off and
// no fast-math, like ggml's reference C, and every expression keeps ggml's evaluation order).
// The block layouts are in block_formats.h; weight_terms.h dequantizes them.
#pragma once

#include <cstdint>

#include "gguf/ggml_types.h"
#include "quant/block_formats.h"

namespace xtile {

// 32-element types (quantize_legacy.cpp); k must be a multiple of 32.
// Q4_1 / Q5_1: d = (max − min) / (2^bits − 1), m = min, q = trunc((x − min)/d + 0.5).
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t k);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t k);
// Q5_0: as Q4_0 with 5 bits: d = (signed value of largest |x|) / −16, q = trunc(x/d + 16.5) ≤ 31.
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t k);

// K-quants (quantize_kquants.cpp); k must be a multiple of 256.
// Q4_K / Q5_K: per 32-element sub-block a weighted least-squares fit of scale and min over a
// small grid of candidate scales, then 6-bit scales/mins relative to the superblock's largest.
void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t k);
void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t k);
// Q6_K: per 16-element sub-block a symmetric fit weighted by x², int8 scales relative to the
// superblock's largest.
void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t k);

// Non-linear 4-bit (quantize_iq4.cpp), the codebook kIq4Values.
// IQ4_NL (k a multiple of 32) and IQ4_XS (k a multiple of 256) as llama-quantize runs them: a
// search over 15 candidate scales per 32-block, weighted by x². (ggml's quantize_row_iq4_nl_ref
// uses no search; llama-quantize never calls it.)
void quantize_row_iq4_nl(const float* x, BlockIq4Nl* y, int64_t k);
void quantize_row_iq4_xs(const float* x, BlockIq4Xs* y, int64_t k);

// Whether quantize_row can write `type`: F32, F16, BF16, Q8_0, Q4_0 and the types above.
bool can_quantize_to(GgmlType type);
// "f32, f16, bf16, q8_0, q4_0, q4_1, ..." for error messages.
const char* quantizable_type_names();
// One row of k floats to `type` (k a multiple of the type's block size; out holds
// ggml_row_bytes(type, k) bytes).
void quantize_row(GgmlType type, const float* x, uint8_t* out, int64_t k);

}  // namespace xtile
