// Repacking GGUF rows into the layouts of src/kernels/kernel_api.h (byte geometry:
// x16_layout.h). Done once per tensor at load.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernel_api.h"
#include "quant/weight_terms.h"

namespace xtile {

// The layout a tier's kernels read for a weight type by default (ref: the GGUF rows; the
// others: x16; the registry may still give a tier a rows kernel, see registry.cpp).
Layout layout_for(GgmlType type, Tier tier);
Layout rows_layout(GgmlType type);
Layout x16_layout(GgmlType type);
GgmlType layout_type(Layout l);
bool is_interleaved(Layout l);
// Rows per packing unit: 16 for the x16 layouts, 1 for rows.
int64_t layout_row_step(Layout l);
// Bytes of an n × k matrix in layout l (x16: n rounded up to 16).
size_t packed_bytes(Layout l, int64_t n, int64_t k);

// Packs rows [row_begin, row_end) of an n × k GGUF matrix `src` (n rows of GGML blocks)
// into `dst` (packed_bytes(l, n, k) bytes). row_begin and row_end are multiples of
// layout_row_step(l) (row_end may also be n); padding rows of the last group are written too.
// Separate ranges can be packed by separate threads.
void pack_rows(Layout l, const uint8_t* src, int64_t n, int64_t k, uint8_t* dst, int64_t row_begin,
               int64_t row_end);
inline void pack_matrix(Layout l, const uint8_t* src, int64_t n, int64_t k, uint8_t* dst) {
  pack_rows(l, src, n, k, dst, 0, n);
}
// pack_rows through the per-element packer alone (decode each element's terms, place its code):
// the specification that pack_rows' copying packers (every x16 type) are checked
// against byte for byte. For tests.
void pack_rows_per_element(Layout l, const uint8_t* src, int64_t n, int64_t k, uint8_t* dst,
                           int64_t row_begin, int64_t row_end);

// The contract's terms of 32-block b of row `row` of a packed matrix, in any layout: the same
// values as weight_format(type)->terms on the GGUF row (tested), so ref's definition applies to
// packed bytes too. Scalar; for embedding lookups, tests and the amx emulator.
void packed_terms(const PackedMatrix& w, int64_t row, int64_t b, BlockTerms* out);

}  // namespace xtile
