// The float operations of the forward pass outside the quantized matmuls: reductions, RMSNorm,
// RoPE, softmax, SiLU, fp16 rows. DESIGN.md §3.5: this code is the same whatever tier the
// matmuls use, every output row is computed by one thread, and every reduction has one fixed
// order, so a row's result depends only on its inputs — never on --kernels, the thread count or
// the batch a row arrived in.
//
// The fixed order of every float reduction (dot, sum, sum of squares) is "16 lanes": element i
// is accumulated into lane i % 16 in ascending i (a multiply and an add, each rounded: no fma),
// then the lanes are folded pairwise, lane j += lane j + w for w = 8, 4, 2, 1. That is what one
// 16-float vector (or two of 8) computes with a vertical loop and a halving horizontal fold, so a
// later vectorized version can give the same bits on every ISA; GCC already vectorizes the scalar
// loops below with SSE2 at -O2/-O3 without reassociating anything.
#pragma once

#include <cstdint>

namespace xtile {
class ThreadPool;
}

namespace xtile::ops {

inline constexpr int kLanes = 16;

// The hot float loops are compiled three times from the same source, for baseline x86-64, AVX2
// and AVX-512, and the loader picks one for the CPU (GCC function multi-versioning, ifunc). The
// code fixes every operation and its order (explicit lanes, no fma: -ffp-contract=off), so the
// versions differ only in vector width, never in results; the choice follows the CPU, never
// --kernels. (Put on definitions only: callers call the one ifunc symbol.)
#define XTILE_FLOAT_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))

// Rows per thread-pool grain for per-row work of `row_cost` element operations: at least
// ~32K operations (~10 µs) per grain, below which waking another thread costs more than it
// saves (generation's M = 1 steps then run on the calling thread). Only the partition changes:
// every row is still computed the same way by one thread.
inline int64_t row_grain(int64_t row_cost) {
  constexpr int64_t kMinWork = 32768;
  return row_cost >= kMinWork ? 1 : kMinWork / (row_cost > 0 ? row_cost : 1);
}

float dot(const float* a, const float* b, int64_t n);  // Σ a[i]·b[i], 16-lane order
// out[r] = dot(a + r * a_stride, b, n) for r < count, the same bits: four rows at a time share
// each load of b (a router's or a float matmul's rows against one activation row).
void dots(const float* a, int64_t a_stride, int64_t count, const float* b, int64_t n, float* out);
float sum(const float* a, int64_t n);                  // Σ a[i], 16-lane order
float sum_squares(const float* a, int64_t n);          // Σ a[i]², 16-lane order

// fp16 → fp32, exactly fp16_to_fp32 (base/fp16.h) of every element, written branch-free so
// that it vectorizes (the attention reads the fp16 KV cache through it).
// Both take F16C's instructions where the CPU has them (the same bits); the _portable versions
// are the code every other CPU runs, exposed so that tests can compare the two.
void f16_to_f32_row(const uint16_t* x, float* y, int64_t n);
void f32_to_f16_row(const float* x, uint16_t* y, int64_t n);  // round half to even, as F16C
void f16_to_f32_row_portable(const uint16_t* x, float* y, int64_t n);
// bf16 → fp32: the bits shifted up (exact).
void bf16_to_f32_row(const uint16_t* x, float* y, int64_t n);
void f32_to_f16_row_portable(const float* x, uint16_t* y, int64_t n);

// RMSNorm of one row as llama.cpp's rms_norm followed by mul: ss = sum_squares(x),
// scale = 1 / sqrtf(ss / n + eps), y[i] = (x[i] · scale) · w[i]. y may alias x.
void rmsnorm_row(const float* x, const float* w, int64_t n, float eps, float* y);
// Rows r < rows of x (stride ldx) into y (stride ldy), rows split over the pool.
void rmsnorm(ThreadPool& pool, const float* x, int64_t ldx, const float* w, int64_t rows, int64_t n,
             float eps, float* y, int64_t ldy);

// Rotary position embedding, llama.cpp's two modes:
//   norm (LLAMA_ROPE_TYPE_NORM, arch llama): pairs (x[2i], x[2i+1]);
//   neox (LLAMA_ROPE_TYPE_NEOX, qwen2/qwen3): pairs (x[i], x[i + n_rot/2]).
// Pair i (i < n_rot/2) turns by theta_i = pos · inv_freq[i]; dimensions >= n_rot are left as
// they are. (x0, x1) → (x0·cos − x1·sin, x0·sin + x1·cos), each product rounded.
enum class RopeMode { norm, neox };

// inv_freq[i] = base^(−2i/n_rot) / (freq_factors[i] · linear_factor) for i < n_rot/2, in
// double (freq_factors may be null: all 1; linear_factor: rope.scaling.factor of "linear"
// scaling, 1 for none). Computed once at load.
void rope_inv_freq(double base, int64_t n_rot, const float* freq_factors, double linear_factor,
                   double* inv_freq);
// cos/sin of pos · inv_freq[i] for i < n_rot/2, computed in double and rounded to float once
// (the same value for every head and every row at this position).
void rope_cos_sin(int64_t pos, const double* inv_freq, int64_t n_rot, float* cos_out,
                  float* sin_out);
// Rotates one head vector of head_dim floats in place.
void rope_head(RopeMode mode, float* x, int64_t n_rot, const float* cos_t, const float* sin_t);

// In place: x[i] = exp(x[i] − max) / Σ exp(x[j] − max) (exp: lanes::exp, src/ops/lanes16.h,
// within 2 ulp of expf; the sum in 16-lane order; the division as a product with 1/Σ, as
// ggml's soft_max).
void softmax_row(float* x, int64_t n);

// out[i] = silu(gate[i]) · up[i], silu(g) = g / (1 + exp(−g)) (ggml_silu_f32; exp: lanes::exp).
// out may alias gate.
void swiglu_row(const float* gate, const float* up, float* out, int64_t n);

// The vector width (floats) of the lanes16.h versions that softmax_row and swiglu_row run on
// this CPU: 16 with AVX-512, 8 with AVX2, else 4.
int lanes_width();

// Index of the largest value (the first one on ties; NaN elements never win, and a NaN at 0
// gives 0): the scalar loop `if (x[i] > x[best]) best = i`, vectorized (lanes16.h); n >= 1.
int64_t argmax(const float* x, int64_t n);

}  // namespace xtile::ops
