#include "kernels/ref/ref_kernels.h"

#include <cmath>

#include "base/fp16.h"
#include "quant/quant.h"

namespace xtile::ref {

void quantize_row(const float* x, int64_t k, int8_t* q, float* d, int32_t* s) {
  quantize_acts_row_ref(x, k, q, d, s);
}

namespace {

// Signed weight value i (0..31) of a block.
inline int weight_at(const BlockQ8_0& b, int i) { return b.qs[i]; }
inline int weight_at(const BlockQ4_0& b, int i) {
  const uint8_t byte = b.qs[i % 16];
  return (i < 16 ? (byte & 0x0f) : (byte >> 4)) - 8;
}

template <typename Block>
void matmul_rows(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
                 int64_t m1, int64_t n0, int64_t n1) {
  const int64_t nb = w.k / kQK;
  const auto* blocks = reinterpret_cast<const Block*>(w.data);
  for (int64_t m = m0; m < m1; ++m) {
    const int8_t* qx = x.q + m * x.k;
    const float* dx = x.d + m * nb;
    for (int64_t n = n0; n < n1; ++n) {
      const Block* row = blocks + n * nb;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t isum = 0;
        for (int i = 0; i < kQK; ++i) isum += weight_at(row[b], i) * qx[b * kQK + i];
        const float scale = fp16_to_fp32(row[b].d) * dx[b];  // rounded to fp32 first
        acc = std::fma(static_cast<float>(isum), scale, acc);
      }
      y[m * ldy + n] = acc;
    }
  }
}

}  // namespace

void q8_0_matmul(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
                 int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, Layout::q8_0_rows, "q8_0_matmul__ref");
  matmul_rows<BlockQ8_0>(w, x, y, ldy, m0, m1, n0, n1);
}

void q4_0_matmul(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
                 int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, Layout::q4_0_rows, "q4_0_matmul__ref");
  matmul_rows<BlockQ4_0>(w, x, y, ldy, m0, m1, n0, n1);
}

}  // namespace xtile::ref
