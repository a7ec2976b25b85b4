// Causal multi-head attention with grouped KV heads (GQA) over a KV cache, with one fixed
// arithmetic (DESIGN.md §3.7, docs/MODEL.md "Attention") that every implementation reproduces
// bit for bit: the element loop (AttentionPath::reference), the vectorized kernels at every
// width, prompt tiles that keep a block's scores in L1, and generation split over threads by
// blocks of positions. For a query row at position t and head h (kv head g):
//
//   positions 0..t in blocks of kBlock = 256 (block c: [256c, min(256c + 256, t + 1)))
//   per block, in any order and on any thread:
//     s_p  = (Σ_{i ascending} q[i]·k_p[i], from 0.0f, each step one fma) · scale
//     m_c  = max_p s_p
//     e_p  = exp(s_p − m_c)                          exp: ops::lanes::exp (within 2 ulp)
//     l_c  = fold16 of the 16 lane sums, lane j = Σ e_p over p ≡ j (mod 16), p ascending
//     o_c  = Σ_{p ascending} e_p · v_p, from 0.0f, each step one fma per element
//   combined over blocks in ascending c (first block: M, L, O = m_0, l_0, o_0):
//     M' = max(M, m_c), a = exp(M − M'), b = exp(m_c − M')
//     L  = L·a + l_c·b,  O = O·a + o_c·b            (each product rounded, then the add)
//   out = O / L
//
// "One fma": acc = fmaf(x, y, acc), the product and the sum rounded once (std::fma in the element
// loop, VFMADD in the kernels). Decision (2026-11-30): the two O(context²) loops of a prompt were
// a multiply then an add; fused, pp2048 ran 16 % and pp4096 18 % faster on an Intel Xeon with
// AMX, whose FMA ports do the adds too, so a separate multiply and add cost two µops where an fma
// costs one (docs/PERF.md); every AVX2 and AVX-512 CPU has FMA, and the fused result is the more
// accurate one. The combine below keeps its separately rounded products (once per block).
//
// fold16 is ops.h's pairwise fold (lane j += lane j + w for w = 8, 4, 2, 1). Every output row
// depends only on its own query and the cache, so a row gives the same bits whether it arrives
// alone or in a batch of any size, on any thread count. (For finite K/V: the vectorized code
// multiplies positions past a row's causal end by a zero weight instead of skipping them.)
//
// The cache layout (KvLayerView) stores a kv head's positions contiguously: K transposed in
// chunks of 16 positions, so that one 16-lane load holds dimension i of 16 positions (the
// scores of 16 positions are then 16 lanes of one vertical dot), V row by row.
//
// A q8_0 V holds each position's head_dim values as ggml's q8_0 blocks (per 32: an fp16 scale d
// and 32 int8 q, from quantize_row_q8_0), read as the f32 d·q (exact: an 11-bit by 8-bit
// product); the arithmetic above is unchanged.
//
// A q8_0 K (as llama.cpp's, whose vec_dot takes the query quantized to q8_0) scores with integer
// dot products: each query vector is quantized per 32 dimensions by quantize_row_q8_0 (scale
// d_q,b, int8 q_q) and, for positions p of the block,
//     isum_p,b = Σ_{i in block b} q_q[i] · q_k,p[i]                  exact int32 (|.| ≤ 516128)
//     s_p  = (Σ_{b ascending} float(isum_p,b) · (fp32(d_k,p,b) · fp32(d_q,b)), from 0.0f) · scale
// the scale product rounded, then one fma per block (the matmuls' epilogue, docs/KERNELS.md).
// float(isum) is exact (< 2^24), so every way of summing the integers (VPDPBUSD, VPMADDUBSW, a
// scalar loop) gives the same s_p; the rest is as above. The query's rounding makes a q8_0 K differ
// from an f32 one by more than K's own rounding (tests/attention_test.cpp states the tolerance),
// and it turns the scores, half of a long prompt's attention, from float multiply-adds into 4-byte
// integer dot products. The q8_0 K is transposed for those dot products: per 16-position chunk and
// 32-dimension block, the 16 positions' fp16 scales (32 bytes), then 8 groups of 4 dimensions, each
// the 16 positions' 4 values (64 bytes: position p % 16 at 4 · (p % 16)), stored as q + 128
// (unsigned: VPDPBUSD multiplies unsigned by signed bytes; the kernels subtract 128 · Σ q_q).

#pragma once

#include <cstdint>
#include <vector>

#include "cpu/thread_pool.h"

namespace xtile::ops {

inline constexpr int64_t kAttentionBlock = 256;  // positions per softmax block
inline constexpr int64_t kKChunk = 16;           // positions per transposed K chunk

enum class KvElem { f32, f16, bf16, q8_0 };

// Bytes of one position's head_dim elements (q8_0: head_dim a multiple of 32, 34 bytes per 32).
int64_t kv_row_bytes(KvElem elem, int64_t head_dim);

// One layer of the KV cache. For kv head g, position p, dimension i < head_dim:
//   K at k[((g · capacity / 16 + p / 16) · head_dim + i) · 16 + p % 16]
//   V at v[(g · capacity + p) · head_dim + i]
// elements of k_elem / v_elem (fp16 and bf16 as their bit patterns). capacity is a multiple
// of 16. A q8_0 K: chunk (g, p / 16), block i / 32 of it at byte
//   ((g · capacity / 16 + p / 16) · head_dim / 32 + i / 32) · 544
// holds 16 fp16 scales (position p % 16 at 2 · (p % 16)), then at
// 32 + 64 · (i % 32 / 4) + 4 · (p % 16) + i % 4 the byte q + 128 (kv_kq8_index). A q8_0 V is rows
// of blocks: position p of head g at byte (g · capacity + p) · kv_row_bytes(q8_0, head_dim), its
// head_dim / 32 blocks in order.
struct KvLayerView {
  const void* k = nullptr;
  const void* v = nullptr;
  KvElem k_elem = KvElem::f16;
  KvElem v_elem = KvElem::f16;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t capacity = 0;
};

// Element offsets of the layout above (for writers: the KV cache, tests).
inline int64_t kv_k_index(const KvLayerView& kv, int64_t g, int64_t p, int64_t i) {
  return ((g * (kv.capacity / kKChunk) + p / kKChunk) * kv.head_dim + i) * kKChunk + p % kKChunk;
}
inline int64_t kv_v_index(const KvLayerView& kv, int64_t g, int64_t p, int64_t i) {
  return (g * kv.capacity + p) * kv.head_dim + i;
}
// Byte offset of position p of head g in a q8_0 V.
inline int64_t kv_q8_row_offset(const KvLayerView& kv, int64_t g, int64_t p) {
  return (g * kv.capacity + p) * kv_row_bytes(KvElem::q8_0, kv.head_dim);
}
// A q8_0 K: the bytes of one 16-position chunk's 32-dimension block (16 scales, 32 × 16 int8),
// and the offset of the block holding (g, p, i).
inline constexpr int64_t kKq8BlockBytes = 2 * kKChunk + 32 * kKChunk;
inline int64_t kv_kq8_block_offset(const KvLayerView& kv, int64_t g, int64_t p, int64_t i) {
  return ((g * (kv.capacity / kKChunk) + p / kKChunk) * (kv.head_dim / 32) + i / 32) * kKq8BlockBytes;
}
// Within that block: the byte of (p, i) (its value q + 128) and of p's fp16 scale.
inline int64_t kv_kq8_index(int64_t p, int64_t i) {
  return 2 * kKChunk + 64 * (i % 32 / 4) + 4 * (p % kKChunk) + i % 4;
}
inline int64_t kv_kq8_scale_index(int64_t p) {
  return 2 * (p % kKChunk);
}
// The f32 value of K / V element (g, p, i), whatever the element type (the definition the
// kernels' conversions follow; q8_0: fp32(d) · q, what the cache stored; a q8_0 K's scores use
// d and q apart, as above).
float kv_k_value(const KvLayerView& kv, int64_t g, int64_t p, int64_t i);
float kv_v_value(const KvLayerView& kv, int64_t g, int64_t p, int64_t i);

struct AttentionShape {
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // divides n_head; query head h reads kv head h / (n_head / n_head_kv)
  int64_t head_dim = 0;
  float scale = 0.0f;  // applied to q·k before the softmax (1/sqrt(head_dim))
};

// How attention computes: `lanes`, the vectorized kernels (head_dim a multiple of 16) in the
// version for this CPU's vector width; `reference`, the element loop. For tests, `lanes_w4` /
// `lanes_w8` / `lanes_w16` run the vectorized kernels at one width whatever the CPU (compiled for
// baseline x86-64, a q8_0 K's integer sums by plain loops), so that every width's code is checked
// on any machine. Two parts need instructions outside that baseline and live in the ISA objects
// (kernels/attention_isa.h): generation over an fp16 cache reading it in place through F16C, and
// a q8_0 K's integer dot products (VPDPBUSD; VPMADDUBSW on AVX2). `lanes` picks the ISA object
// of its width where the CPU has it; `lanes_isa_w8` / `lanes_isa_w16` force the 8- or 16-wide
// one (they need the avx2 / avx512 tier: attention_path_available). All give the same bits.
enum class AttentionPath {
  lanes,
  reference,
  lanes_w4,
  lanes_w8,
  lanes_w16,
  lanes_isa_w8,
  lanes_isa_w16
};

// False for a path that this CPU cannot run (the ISA paths without their tier).
bool attention_path_available(AttentionPath path);

// For rows t < rows: out[t · ldo + h · head_dim + i] = the arithmetic above over positions
// 0..pos[t], q_h = q + t · ldq + h · head_dim. `scratch` is resized as needed (kept by the caller
// to avoid allocating per call).
void attention(ThreadPool& pool, const AttentionShape& shape, const float* q, int64_t ldq,
               const int64_t* pos, int64_t rows, const KvLayerView& kv, float* out, int64_t ldo,
               std::vector<float>& scratch, AttentionPath path = AttentionPath::lanes);

}  // namespace xtile::ops
