// Causal multi-head attention with grouped KV heads (GQA) over a KV cache. Every (token, head)
// output row is computed by one thread, in a fixed order, reading only the cache: a token's own
// key and value are read back from the cache like every other position's (after their fp16
// rounding), so a row attends over positions 0..pos the same way whether it arrived in a batch
// of 512 or alone (DESIGN.md §3.5).
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/thread_pool.h"

namespace xtile::ops {

// One layer of the KV cache: position p's keys are k[p * row_elems + kv_head * head_dim + i],
// stored as fp16 (f16 = true) or f32; values likewise.
struct KvLayerView {
  const void* k = nullptr;
  const void* v = nullptr;
  bool f16 = true;
  int64_t row_elems = 0;  // n_head_kv * head_dim
};

struct AttentionShape {
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // divides n_head; query head h reads kv head h / (n_head / n_head_kv)
  int64_t head_dim = 0;
  float scale = 0.0f;  // applied to q·k before the softmax (1/sqrt(head_dim))
};

// How attention computes: `lanes`, the vectorized kernels for head_dim 64, 128 and 256, in the
// version for this CPU's vector width (other sizes use the element loop); `reference`, the
// element loop always. For tests, `lanes_w4` / `lanes_w8` / `lanes_w16` run the vectorized
// kernels at one width whatever the CPU (compiled for baseline x86-64: the wider ones through
// GCC's generic lowering, slower, same operations), so that every width's code is checked on any
// machine. All of them give the same bits (tests/ops_test.cpp compares them with memcmp).
enum class AttentionPath { lanes, reference, lanes_w4, lanes_w8, lanes_w16 };

// For rows t < rows: out[t * ldo + h * head_dim + i] = Σ_p softmax_p(scale · q_h·k_p) · v_p[i]
// over p = 0..pos[t], q_h = q + t * ldq + h * head_dim. The sum over p is ascending, one
// multiply and one add per term. `scratch` is resized as needed (kept by the caller to avoid
// allocating per call).
void attention(ThreadPool& pool, const AttentionShape& shape, const float* q, int64_t ldq,
               const int64_t* pos, int64_t rows, const KvLayerView& kv, float* out, int64_t ldo,
               std::vector<float>& scratch, AttentionPath path = AttentionPath::lanes);

}  // namespace xtile::ops
