#include "ops/matmul_float.h"

#include <algorithm>

#include "ops/matmul.h"
#include "ops/ops.h"

namespace xtile {

namespace {

// Weight rows per tile: 16 rows of K floats stay in L1/L2 while every activation row of the
// tile's m range passes over them, instead of streaming the whole matrix once per row.
constexpr int64_t kRowTile = 16;
constexpr int64_t kActTile = 64;

void matmul_f32_block(const float* w, int64_t k, const float* x, int64_t ldx, float* y, int64_t ldy,
                      int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  for (int64_t nt = n0; nt < n1; nt += kRowTile) {
    const int64_t nt_end = std::min(nt + kRowTile, n1);
    for (int64_t mt = m0; mt < m1; mt += kActTile) {
      const int64_t mt_end = std::min(mt + kActTile, m1);
      for (int64_t m = mt; m < mt_end; ++m)
        ops::dots(w + nt * k, k, nt_end - nt, x + m * ldx, k, y + m * ldy + nt);
    }
  }
}

}  // namespace

void matmul_f32(ThreadPool& pool, const float* w, int64_t w_rows, int64_t k, const float* x,
                int64_t ldx, int64_t rows, float* y, int64_t ldy) {
  if (rows * w_rows * k < 4 * 32768) {  // a few µs: not worth waking the pool (ops::row_grain)
    matmul_f32_block(w, k, x, ldx, y, ldy, 0, rows, 0, w_rows);
    return;
  }
  pool.run([&](int t, int n_threads) {
    // The same (m, n) split as the quantized driver; every output is one dot either way.
    const WorkBlock wb = matmul_work_block(rows, w_rows, 1, t, n_threads);
    if (wb.m0 < wb.m1 && wb.n0 < wb.n1)
      matmul_f32_block(w, k, x, ldx, y, ldy, wb.m0, wb.m1, wb.n0, wb.n1);
  });
}

}  // namespace xtile
