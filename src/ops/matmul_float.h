// The float matmul of the float path (F32/F16/BF16 weights, converted to f32 at load): each
// output is one ops::dot of a weight row and an activation row (16-lane order), so it is the
// same bits for any thread count, any batch size and any --kernels.
#pragma once

#include <cstdint>

#include "cpu/thread_pool.h"

namespace xtile {

// y[m * ldy + n] = ops::dot(w + n * k, x + m * ldx, k) for m < rows, n < w_rows.
// w is w_rows × k row-major. Threads split the weight rows (or the activation rows when there
// are fewer weight rows than threads).
void matmul_f32(ThreadPool& pool, const float* w, int64_t w_rows, int64_t k, const float* x,
                int64_t ldx, int64_t rows, float* y, int64_t ldy);

}  // namespace xtile
