// The kernel ladder's shared vocabulary: quantized activations, packed weight layouts, and the
// function types every tier implements. See DESIGN.md §3 for the contract (bit-exact ladder).
//
// Packed layouts
// --------------
// <type>_rows: the GGUF bytes as they are (row n = K/32 or K/256 consecutive GGML blocks).
//   Read by the ref tier (and by amx-emu for the one type its tiles do not cover, Q6_K).
// <type>_x16: rows in groups of 16, the GGUF blocks of each group interleaved so that one
//   64-byte load holds 4 consecutive K values of each of the 16 rows (the AMX B-tile "VNNI"
//   order, also one zmm for VPDPBUSD); exactly the GGUF bytes per row, rearranged. The byte
//   geometry of every type is src/kernels/pack/x16_layout.h. For Q8_0 the quants are the int8
//   weights + 128 (unsigned, the VPDPBUSD operand; the bias is removed exactly with the
//   activation block sum, isum = dot − 128·s); for the 4-bit types they are the GGUF codes
//   (Q4_0: nibble = w + 8, so isum = dot − 8·s).
//   Read by avx2, avx512, amx and amx-emu.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/aligned_buffer.h"
#include "cpu/cpu_caps.h"
#include "gguf/ggml_types.h"

namespace xtile {

// One value per (weight type, form); the numbers are only in-memory tags.
enum class Layout : uint32_t {
  q8_0_rows = 1, q4_0_rows = 2, q8_0_x16 = 3, q4_0_x16 = 4,
  q4_1_rows, q4_1_x16, q5_0_rows, q5_0_x16, q5_1_rows, q5_1_x16, iq4_nl_rows, iq4_nl_x16,
  q4_k_rows, q4_k_x16, q5_k_rows, q5_k_x16, q6_k_rows, q6_k_x16, iq4_xs_rows, iq4_xs_x16,
};
std::string_view layout_name(Layout l);  // "q8_0_rows", ...

constexpr int kInterleave = 16;  // rows per group in the x16 layouts

// Quantized activations (DESIGN.md §3.1), m rows of k (k a multiple of 32), row-major:
// q[row * k + i], d[row * (k/32) + b], s[row * (k/32) + b]. Rows of q are 64-byte aligned when
// k is a multiple of 64 (AMX A tiles load 16 rows × 32 bytes with stride k).
// Two derived per-block values serve the other weight types (quant/weight_terms.h), computed
// from q, d and s by portable code (complete_act_row), so every tier sees the same bytes:
//   sd = fl((float)s · d)    the activation side of the min term (Q4_1/Q5_1/Q4_K/Q5_K)
//   sl = Σ q[0..15]          the first half's sum (Q6_K's per-16 bias correction)
struct QuantizedActs {
  int64_t m = 0;
  int64_t k = 0;
  int8_t* q = nullptr;
  float* d = nullptr;
  int32_t* s = nullptr;
  float* sd = nullptr;
  int32_t* sl = nullptr;
  int64_t blocks() const { return k / 32; }
};

// Storage for QuantizedActs; grows, never shrinks.
class ActBuffer {
 public:
  QuantizedActs& resize(int64_t m, int64_t k);
  QuantizedActs& acts() { return acts_; }
 private:
  AlignedBuffer buf_;
  QuantizedActs acts_;
};

// A weight matrix ready for one tier's kernels: n output rows × k, in `layout`.
struct PackedMatrix {
  GgmlType type = GgmlType::Q8_0;
  Layout layout = Layout::q8_0_rows;
  int64_t n = 0;
  int64_t k = 0;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
};

// Quantizes one row of k floats (DESIGN.md §3.1); every tier's version writes identical bytes.
using QuantizeRowFn = void (*)(const float* x, int64_t k, int8_t* q, float* d, int32_t* s);

// sd and sl of activation row `row` from its q, d and s (portable code, the same for every tier).
void complete_act_row(QuantizedActs& a, int64_t row);
// quantize(x) into row `row` of a, then complete_act_row: what every caller runs.
void quantize_act_row(QuantizeRowFn quantize, const float* x, QuantizedActs& a, int64_t row);

// y[m * ldy + n] = contract result for m in [m0, m1), n in [n0, n1). n0 is a multiple of the
// kernel's n_step (16 for x16 layouts, 1 for rows); n1 is a multiple of n_step or equals w.n.
// A kernel must check w.layout and throw xtile::Error if it is not the layout it reads.
using MatmulFn = void (*)(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy,
                          int64_t m0, int64_t m1, int64_t n0, int64_t n1);

// Throws xtile::Error("kernel <name> reads layout <a> but the tensor is packed as <b>").
void check_layout(const PackedMatrix& w, Layout expected, std::string_view kernel_name);

// Error paths for tier code. They are defined in portable code on purpose: a template such as
// xtile::fail<...> instantiated inside an AVX-512 translation unit is a weak symbol the linker
// may pick for portable callers too, which would then run AVX-512 code on any CPU.
[[noreturn]] void fail_row_length(std::string_view kernel_name, int64_t k);
[[noreturn]] void fail_rounding_mode(std::string_view kernel_name);

}  // namespace xtile
