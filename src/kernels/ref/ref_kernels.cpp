#include "kernels/ref/ref_kernels.h"

#include <cmath>
#include <vector>

#include "base/error.h"
#include "kernels/pack/pack.h"
#include "quant/quant.h"
#include "quant/weight_terms.h"

namespace xtile::ref {

void quantize_row(const float* x, int64_t k, int8_t* q, float* d, int32_t* s) {
  quantize_acts_row_ref(x, k, q, d, s);
}

void matmul(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
            int64_t m1, int64_t n0, int64_t n1) {
  const WeightFormat* f = weight_format(w.type);
  if (!f || layout_type(w.layout) != w.type)
    fail("kernel matmul__ref: a ", ggml_type_name(w.type), " tensor packed as ",
         layout_name(w.layout));
  if (w.k != x.k) fail("kernel matmul__ref: weight K = ", w.k, " but activations have K = ", x.k);
  const int64_t nb = w.k / 32;
  std::vector<BlockTerms> row(static_cast<size_t>(nb));
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t b = 0; b < nb; ++b) packed_terms(w, n, b, &row[static_cast<size_t>(b)]);
    for (int64_t m = m0; m < m1; ++m) {
      const int8_t* qx = x.q + m * x.k;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const BlockTerms& t = row[static_cast<size_t>(b)];
        int32_t isum = 0;
        for (int h = 0; h < 2; ++h) {
          int32_t half = 0;
          for (int i = 16 * h; i < 16 * h + 16; ++i) half += t.q[i] * qx[b * 32 + i];
          isum += t.sub[h] * half;  // sub = 1 but for Q6_K
        }
        const float scale = t.scale * x.d[m * nb + b];  // rounded to fp32 first
        acc = std::fma(static_cast<float>(isum), scale, acc);
        if (f->has_min) acc = std::fma(t.min, x.sd[m * nb + b], acc);
      }
      y[m * ldy + n] = acc;
    }
  }
}

template <GgmlType T>
void matmul_rows(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
                 int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, rows_layout(T), "matmul_rows__ref");
  matmul(w, x, y, ldy, m0, m1, n0, n1);
}

#define XTILE_REF_TYPE(T)                                                                     \
  template void matmul_rows<GgmlType::T>(const PackedMatrix&, const QuantizedActs&, float*, \
                                         int64_t, int64_t, int64_t, int64_t, int64_t);
XTILE_REF_TYPE(Q8_0)
XTILE_REF_TYPE(Q4_0)
XTILE_REF_TYPE(Q4_1)
XTILE_REF_TYPE(Q5_0)
XTILE_REF_TYPE(Q5_1)
XTILE_REF_TYPE(IQ4_NL)
XTILE_REF_TYPE(Q4_K)
XTILE_REF_TYPE(Q5_K)
XTILE_REF_TYPE(Q6_K)
XTILE_REF_TYPE(IQ4_XS)
#undef XTILE_REF_TYPE

}  // namespace xtile::ref
