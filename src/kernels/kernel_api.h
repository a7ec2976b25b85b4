// The kernel ladder's shared vocabulary: quantized activations, packed weight layouts, and the
// function types every tier implements. See DESIGN.md §3 for the contract (bit-exact ladder).
//
// Packed layouts
// --------------
// q8_0_rows / q4_0_rows: the GGUF bytes as they are (row n = K/32 consecutive GGML blocks).
//   Read by the ref tier only.
//
// q8_0_x16 / q4_0_x16 ("x16 VNNI"): rows in groups of 16 (the last group padded with rows of
//   scale 0 and weight value 0: byte 0x80 for q8_0, nibble 8 for q4_0), K blocks of 32 in order. Group g, block b starts at byte
//   (g * nb + b) * block_bytes (nb = K/32) and holds
//     [16 × fp16 scales, row r at index r]            32 bytes
//     [quants]                                         512 bytes (q8_0) or 256 bytes (q4_0)
//   q8_0 quants: byte (j*16 + r)*4 + i  =  (uint8)(w[row 16g+r][k = 32b + 4j + i] + 128)
//     for j < 8, r < 16, i < 4. This is the AMX B-tile "VNNI" layout (8 rows × 64 bytes: row j
//     holds 4 consecutive K for each of 16 output columns) and one zmm per j for VPDPBUSD.
//     Weights are biased to unsigned so VPDPBUSD (u8 × s8) takes them as its unsigned operand;
//     the bias is removed exactly with the activation block sum: isum = dot - 128 * s.
//   q4_0 quants: byte (j*16 + r)*4 + i for j < 4 holds in its low nibble the nibble of
//     (row 16g+r, k = 32b + 4j + i) and in its high nibble that of (row 16g+r, k = 32b+16+4j+i);
//     nibbles are GGUF's unsigned 0..15 (weight = nibble - 8): isum = dot - 8 * s.
//     Unpacking (& 0x0f, >> 4) yields the q8 VNNI order above (j 0..3 from low, 4..7 from high).
//   block_bytes = 544 (q8_0, 34 bytes per row per block, as GGUF) or 288 (q4_0, 18 bytes: 4.5 bits).
//   Read by avx2, avx512, amx and amx-emu.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/aligned_buffer.h"
#include "cpu/cpu_caps.h"
#include "gguf/ggml_types.h"

namespace xtile {

enum class Layout : uint32_t { q8_0_rows = 1, q4_0_rows = 2, q8_0_x16 = 3, q4_0_x16 = 4 };
std::string_view layout_name(Layout l);  // "q8_0_rows", ...

constexpr int kInterleave = 16;  // rows per group in the x16 layouts

// Quantized activations (DESIGN.md §3.1), m rows of k (k a multiple of 32), row-major:
// q[row * k + i], d[row * (k/32) + b], s[row * (k/32) + b]. Rows of q are 64-byte aligned when
// k is a multiple of 64 (AMX A tiles load 16 rows × 32 bytes with stride k).
struct QuantizedActs {
  int64_t m = 0;
  int64_t k = 0;
  int8_t* q = nullptr;
  float* d = nullptr;
  int32_t* s = nullptr;
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
