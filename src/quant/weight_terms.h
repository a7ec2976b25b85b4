// The contract's view of a quantized weight type (DESIGN.md §3.6, docs/KERNELS.md "Weight types"):
// every type xtile multiplies is, per 32-element block of a row, exact small integers q times an
// exact fp32 scale, plus an optional exact fp32 min per element, and (Q6_K) two integer
// sub-scales for the two 16-element halves. This table is the specification every tier follows;
// the ref kernel is written with it and nothing else.
//
// The fold of one output y[m, n], blocks b ascending from acc = 0.0f:
//   isum = Σ_{i<32} sub[i / 16] · q[i] · qx[i]                         exact int32 (|isum| < 2^24)
//   acc  = fmaf((float)isum, fl(scale · dx), acc)                       the product rounded first
//   acc  = fmaf(min, sd, acc)             only for types with mins; sd = fl((float)s · dx)
// with qx, dx, s the activation block's int8 values, scale and sum, and sub = {1, 1} for every
// type but Q6_K. For Q8_0 and Q4_0 this is DESIGN.md §3.3 unchanged.
#pragma once

#include <cstdint>

#include "gguf/ggml_types.h"

namespace xtile {

struct BlockTerms {
  int8_t q[32];      // the integer weight values (what multiplies the activation's int8)
  float scale = 0;   // exact in fp32: d, d·sc_j (Q4_K/Q5_K), d·(ls_j − 32) (IQ4_XS)
  float min = 0;     // exact: +m (Q4_1/Q5_1), −dmin·m_j (Q4_K/Q5_K); 0 without mins
  int8_t sub[2] = {1, 1};  // Q6_K: the int8 scales of elements 0..15 and 16..31
};

struct WeightFormat {
  GgmlType type;
  int super_elems;  // elements per GGUF block: 32, or 256 (K-quants, IQ4_XS)
  int super_bytes;  // bytes per GGUF block
  bool has_min;     // the fold has the min term
  bool sub16;       // isum has two 16-element halves with integer sub-scales
  int q_min, q_max; // range of q (for tests and for the tiers' overflow arguments)
  // Block b (32 elements, counted from the row start) of a GGUF row.
  void (*terms)(const uint8_t* row, int64_t b, BlockTerms* out);
};

// The format of a weight type the quantized matmuls run, or null (F32/F16/BF16, unsupported).
const WeightFormat* weight_format(GgmlType type);
inline bool is_quantized_weight(GgmlType type) { return weight_format(type) != nullptr; }
// "q8_0, q4_0, q4_k, ..." for error messages.
const char* quantized_weight_names();

// One block's dequantized floats, with ggml's own expression order (so that a row dequantized
// here equals ggml's dequantize_row_* bit for bit): scale·q (+ min), or (scale·sub)·q for Q6_K.
void dequantize_terms(const WeightFormat& f, const BlockTerms& t, float* out);

// A whole GGUF row of k elements (k a multiple of the type's super_elems) of any quantized type.
void dequantize_row(GgmlType type, const uint8_t* row, int64_t k, float* out);

}  // namespace xtile
