#include "ops/matmul.h"

#include <algorithm>
#include <cstdlib>

#include "base/error.h"

namespace xtile {

void quantize_activations(ThreadPool& pool, QuantizeRowFn quantize, const float* x, int64_t ldx,
                          int64_t m, int64_t k, ActBuffer& buffer) {
  QuantizedActs& acts = buffer.resize(m, k);
  pool.parallel_for(0, m, 1, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) quantize_act_row(quantize, x + r * ldx, acts, r);
  });
}

WorkBlock matmul_work_block(int64_t m, int64_t n, int n_step, int t, int n_threads) {
  // Split the weight rows (n) when there are enough groups for every thread: each thread then
  // streams its own slice of the weights once for all of m. Otherwise split the activations.
  const int64_t n_units = (n + n_step - 1) / n_step;
  WorkBlock wb{0, m, 0, n};
  if (n_units >= n_threads || m < n_threads) {
    int64_t u0, u1;
    partition_range(0, n_units, 1, t, n_threads, &u0, &u1);
    wb.n0 = u0 * n_step;
    wb.n1 = u1 * n_step < n ? u1 * n_step : n;
    if (wb.n0 >= wb.n1) wb.n0 = wb.n1 = 0, wb.m1 = 0;
  } else {
    partition_range(0, m, 1, t, n_threads, &wb.m0, &wb.m1);
  }
  return wb;
}

namespace {

// XTILE_PREFETCH_KB (DEVELOPERS.md): KiB of its next share each waiting thread prefetches.
size_t prefetch_bytes() {
  static const size_t bytes = [] {
    const char* v = std::getenv("XTILE_PREFETCH_KB");
    if (v == nullptr) return size_t{192} * 1024;
    char* end = nullptr;
    const long kb = std::strtol(v, &end, 10);
    if (end == v || *end != '\0' || kb < 0 || kb > (long{1} << 30))
      fail("XTILE_PREFETCH_KB must be a whole number of KiB from 0 to 2^30, got '", v, "'");
    return static_cast<size_t>(kb) * 1024;
  }();
  return bytes;
}

}  // namespace

void matmul_quantized(ThreadPool& pool, const KernelSet& kernels, const PackedMatrix& w,
                      const QuantizedActs& x, float* y, int64_t ldy, const PackedMatrix* next) {
  if (w.k != x.k) fail("matmul: weight K = ", w.k, " but activations have K = ", x.k);
  const bool gemv = x.m < kernels.gemm_min_m;
  const MatmulKernel* kernel = gemv ? kernels.gemv : kernels.gemm;
  check_layout(w, kernel->layout, kernel->name);
  if (!gemv) next = nullptr;  // a GEMM is bound by arithmetic, not by the weights' stream
  pool.run([&](int t, int n_threads) {
    const WorkBlock wb = matmul_work_block(x.m, w.n, kernel->n_step, t, n_threads);
    if (wb.m0 < wb.m1 && wb.n0 < wb.n1) kernel->fn(w, x, y, ldy, wb.m0, wb.m1, wb.n0, wb.n1);
    if (next != nullptr) {
      // The next GEMV splits its rows as this one does: thread t's share starts about t / n of
      // the way into the packed bytes (a few lines off at the edges costs nothing).
      const size_t share = next->bytes / static_cast<size_t>(n_threads);
      pool.prefetch_while_waiting(t, next->data + share * static_cast<size_t>(t),
                                  std::min(share, prefetch_bytes()));
    }
  });
}

}  // namespace xtile
