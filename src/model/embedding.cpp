#include "model/embedding.h"

#include <cstring>

#include "base/error.h"
#include "kernels/pack/pack.h"
#include "quant/quant.h"
#include "quant/weight_terms.h"

namespace xtile {

void dequantize_packed_row(const PackedMatrix& w, int64_t row, float* out) {
  if (row < 0 || row >= w.n) fail("row ", row, " is outside a matrix of ", w.n, " rows");
  const WeightFormat* f = weight_format(w.type);
  if (!f) fail("dequantize_packed_row: ", ggml_type_name(w.type), " is not a quantized weight type");
  // The contract's terms of each block, read from whatever layout the tier packed: the same
  // values as the GGUF row's, so the floats are those of dequantize_row (tested).
  BlockTerms t;
  for (int64_t b = 0; b < w.k / 32; ++b) {
    packed_terms(w, row, b, &t);
    dequantize_terms(*f, t, out + b * 32);
  }
}

void dequantize_gguf_row(GgmlType type, const uint8_t* data, int64_t k, int64_t row, float* out) {
  const uint8_t* src = data + static_cast<size_t>(row) * ggml_row_bytes(type, k);
  switch (type) {
    case GgmlType::F32:
      std::memcpy(out, src, static_cast<size_t>(k) * sizeof(float));
      return;
    case GgmlType::F16:
      convert_row_f16_to_f32(reinterpret_cast<const uint16_t*>(src), out, k);
      return;
    case GgmlType::BF16:
      convert_row_bf16_to_f32(reinterpret_cast<const uint16_t*>(src), out, k);
      return;
    default:
      dequantize_row(type, src, k, out);  // every quantized weight type; fails on others
  }
}

}  // namespace xtile
