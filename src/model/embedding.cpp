#include "model/embedding.h"

#include <cstring>

#include "base/error.h"
#include "base/fp16.h"
#include "kernels/pack/pack.h"
#include "quant/quant.h"

namespace xtile {

namespace {

// x16 layout (kernel_api.h): group g, block b at (g·nb + b)·block_bytes: 16 fp16 scales, then
// quants; byte (j·16 + r)·4 + i belongs to row r of the group.
void dequantize_x16_row(const PackedMatrix& w, int64_t row, float* out) {
  const int64_t nb = w.k / kQK;
  const bool q8 = w.layout == Layout::q8_0_x16;
  const size_t block_bytes = 32 + (q8 ? 512 : 256);
  const int64_t g = row / kInterleave;
  const int r = static_cast<int>(row % kInterleave);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w.data + static_cast<size_t>(g * nb + b) * block_bytes;
    uint16_t scale;
    std::memcpy(&scale, blk + 2 * r, sizeof(scale));
    const float d = fp16_to_fp32(scale);
    const uint8_t* quants = blk + 32;
    float* y = out + b * kQK;
    if (q8) {
      for (int j = 0; j < 8; ++j)
        for (int i = 0; i < 4; ++i) {
          const int q = static_cast<int>(quants[(j * kInterleave + r) * 4 + i]) - 128;
          y[4 * j + i] = d * static_cast<float>(q);
        }
    } else {
      for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 4; ++i) {
          const uint8_t byte = quants[(j * kInterleave + r) * 4 + i];
          y[4 * j + i] = d * static_cast<float>((byte & 0x0f) - 8);
          y[16 + 4 * j + i] = d * static_cast<float>((byte >> 4) - 8);
        }
    }
  }
}

}  // namespace

void dequantize_packed_row(const PackedMatrix& w, int64_t row, float* out) {
  if (row < 0 || row >= w.n) fail("row ", row, " is outside a matrix of ", w.n, " rows");
  switch (w.layout) {
    case Layout::q8_0_rows:
    case Layout::q4_0_rows:
      dequantize_gguf_row(layout_type(w.layout), w.data, w.k, row, out);
      return;
    case Layout::q8_0_x16:
    case Layout::q4_0_x16:
      dequantize_x16_row(w, row, out);
      return;
  }
  fail("dequantize_packed_row: unknown layout ", static_cast<uint32_t>(w.layout));
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
    case GgmlType::Q8_0:
      dequantize_row_q8_0(reinterpret_cast<const BlockQ8_0*>(src), out, k);
      return;
    case GgmlType::Q4_0:
      dequantize_row_q4_0(reinterpret_cast<const BlockQ4_0*>(src), out, k);
      return;
    default:
      fail("cannot dequantize a row of type ", ggml_type_name(type));
  }
}

}  // namespace xtile
