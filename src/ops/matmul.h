// The quantized matmul driver: quantizes activations once, then splits (m, n) over the thread
// pool and calls the chosen tier's GEMV or GEMM kernel. K is never split (DESIGN.md §3.4), so
// every output is one kernel's fold and the result does not depend on the thread count.
#pragma once

#include <cstdint>

#include "cpu/thread_pool.h"
#include "kernels/registry.h"

namespace xtile {

// acts = quantize(x), x is m rows of k floats with row stride ldx; rows split over threads.
void quantize_activations(ThreadPool& pool, QuantizeRowFn quantize, const float* x, int64_t ldx,
                          int64_t m, int64_t k, ActBuffer& acts);

// y[m * ldy + n] = sum_k W[n, k] x[m, k] per the contract, for all m < x.m, n < w.n.
// `next`, when given, is the matrix the caller multiplies next: a GEMV hands each thread the
// start of its share of it to prefetch while it waits (ThreadPool::prefetch_while_waiting).
void matmul_quantized(ThreadPool& pool, const KernelSet& kernels, const PackedMatrix& w,
                      const QuantizedActs& x, float* y, int64_t ldy,
                      const PackedMatrix* next = nullptr);

// The (m, n) work split used by matmul_quantized, exposed for tests: for thread t of n_threads,
// the output block [m0, m1) × [n0, n1) it computes (possibly empty).
struct WorkBlock {
  int64_t m0, m1, n0, n1;
};
WorkBlock matmul_work_block(int64_t m, int64_t n, int n_step, int t, int n_threads);

}  // namespace xtile
