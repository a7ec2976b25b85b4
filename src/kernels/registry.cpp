#include "kernels/registry.h"

#include <array>

#include "base/error.h"
#include "kernels/gemv_prefetch.h"
#include "kernels/ref/ref_kernels.h"
// Tier kernel headers (each tier's functions are compiled with only that tier's flags).
// [tier headers]
#include "kernels/avx2/avx2_kernels.h"
#include "kernels/avx512/avx512_kernels.h"
#include "kernels/amx/amx_kernels.h"

namespace xtile {

namespace {

using enum MatmulShape;

// One line per tier and a few types per line: clang-format would fold the macro calls into one
// expression (no entry after the last macro anchors the list).
// clang-format off
constexpr MatmulKernel kMatmulKernels[] = {
    // ref: the definition; one loop nest serves GEMV and GEMM, every weight type.
#define XTILE_REF(T, name, rows)                                                                \
  {name "_gemv_1x1__ref", GgmlType::T, Tier::ref, gemv, Layout::rows, 1,                        \
   ref::matmul_rows<GgmlType::T>},                                                              \
      {name "_gemm_1x1__ref", GgmlType::T, Tier::ref, gemm, Layout::rows, 1,                    \
       ref::matmul_rows<GgmlType::T>},
    XTILE_REF(Q8_0, "q8_0", q8_0_rows) XTILE_REF(Q4_0, "q4_0", q4_0_rows)
    XTILE_REF(Q4_1, "q4_1", q4_1_rows) XTILE_REF(Q5_0, "q5_0", q5_0_rows)
    XTILE_REF(Q5_1, "q5_1", q5_1_rows) XTILE_REF(IQ4_NL, "iq4_nl", iq4_nl_rows)
    XTILE_REF(Q4_K, "q4_K", q4_k_rows) XTILE_REF(Q5_K, "q5_K", q5_k_rows)
    XTILE_REF(Q6_K, "q6_K", q6_k_rows) XTILE_REF(IQ4_XS, "iq4_xs", iq4_xs_rows)
#undef XTILE_REF
    // [avx2 kernels] <rows>x<cols>: activation rows × weight rows of the register block.
#define XTILE_AVX2(T, fn, name, layout)                                                            \
  {name "_gemv_1x64__avx2", GgmlType::T, Tier::avx2, gemv, Layout::layout, 16, avx2::fn##_gemv}, \
      {name "_gemm_4x8__avx2", GgmlType::T, Tier::avx2, gemm, Layout::layout, 16, avx2::fn##_gemm},
    XTILE_AVX2(Q8_0, q8_0, "q8_0", q8_0_x16) XTILE_AVX2(Q4_0, q4_0, "q4_0", q4_0_x16)
    XTILE_AVX2(Q4_1, q4_1, "q4_1", q4_1_x16) XTILE_AVX2(Q5_0, q5_0, "q5_0", q5_0_x16)
    XTILE_AVX2(Q5_1, q5_1, "q5_1", q5_1_x16) XTILE_AVX2(IQ4_NL, iq4_nl, "iq4_nl", iq4_nl_x16)
    XTILE_AVX2(Q4_K, q4_k, "q4_K", q4_k_x16) XTILE_AVX2(Q5_K, q5_k, "q5_K", q5_k_x16)
    XTILE_AVX2(Q6_K, q6_k, "q6_K", q6_k_x16) XTILE_AVX2(IQ4_XS, iq4_xs, "iq4_xs", iq4_xs_x16)
#undef XTILE_AVX2
    // [avx512 kernels]
#define XTILE_AVX512(T, fn, name, layout)                                                         \
  {name "_gemv_1x64__avx512vnni", GgmlType::T, Tier::avx512, gemv, Layout::layout, 16,            \
   avx512::fn##_gemv},                                                                            \
      {name "_gemm_4x32__avx512vnni", GgmlType::T, Tier::avx512, gemm, Layout::layout, 16,        \
       avx512::fn##_gemm},
    XTILE_AVX512(Q8_0, q8_0, "q8_0", q8_0_x16) XTILE_AVX512(Q4_0, q4_0, "q4_0", q4_0_x16)
    XTILE_AVX512(Q4_1, q4_1, "q4_1", q4_1_x16) XTILE_AVX512(Q5_0, q5_0, "q5_0", q5_0_x16)
    XTILE_AVX512(Q5_1, q5_1, "q5_1", q5_1_x16) XTILE_AVX512(IQ4_NL, iq4_nl, "iq4_nl", iq4_nl_x16)
    XTILE_AVX512(Q4_K, q4_k, "q4_K", q4_k_x16) XTILE_AVX512(Q5_K, q5_k, "q5_K", q5_k_x16)
    XTILE_AVX512(Q6_K, q6_k, "q6_K", q6_k_x16) XTILE_AVX512(IQ4_XS, iq4_xs, "iq4_xs", iq4_xs_x16)
#undef XTILE_AVX512
    // [amx kernels]
    // AMX tiles for GEMM (docs/AMX.md); GEMV is memory-bound and stays on AVX-512 VNNI, which
    // every AMX CPU has (the same function as the avx512 tier's, hence its name). Q6_K runs on
    // tiles as two byte planes of q · sub (amx_gemm.cpp), from its own switch point below.
#define XTILE_AMX(T, fn, name, layout)                                                             \
  {name "_gemv_1x64__avx512vnni", GgmlType::T, Tier::amx, gemv, Layout::layout, 16,                \
   avx512::fn##_gemv},                                                                             \
      {name "_gemm_16x16__amx", GgmlType::T, Tier::amx, gemm, Layout::layout, 16, amx::fn##_gemm},
    XTILE_AMX(Q8_0, q8_0, "q8_0", q8_0_x16) XTILE_AMX(Q4_0, q4_0, "q4_0", q4_0_x16)
    XTILE_AMX(Q4_1, q4_1, "q4_1", q4_1_x16) XTILE_AMX(Q5_0, q5_0, "q5_0", q5_0_x16)
    XTILE_AMX(Q5_1, q5_1, "q5_1", q5_1_x16) XTILE_AMX(IQ4_NL, iq4_nl, "iq4_nl", iq4_nl_x16)
    XTILE_AMX(Q4_K, q4_k, "q4_K", q4_k_x16) XTILE_AMX(Q5_K, q5_k, "q5_K", q5_k_x16)
    XTILE_AMX(Q6_K, q6_k, "q6_K", q6_k_x16) XTILE_AMX(IQ4_XS, iq4_xs, "iq4_xs", iq4_xs_x16)
#undef XTILE_AMX
    // [amx-emu kernels]
    // The amx kernels on software tiles, for GEMV (1-row tiles) as well as GEMM, so that tests on
    // any machine run the AMX kernel source on every shape.
#define XTILE_AMX_EMU(T, fn, name, layout)                                                         \
  {name "_gemv_16x16__amx_emu", GgmlType::T, Tier::amx_emu, gemv, Layout::layout, 16,              \
   amx_emu::fn##_gemm},                                                                            \
      {name "_gemm_16x16__amx_emu", GgmlType::T, Tier::amx_emu, gemm, Layout::layout, 16,          \
       amx_emu::fn##_gemm},
    XTILE_AMX_EMU(Q8_0, q8_0, "q8_0", q8_0_x16) XTILE_AMX_EMU(Q4_0, q4_0, "q4_0", q4_0_x16)
    XTILE_AMX_EMU(Q4_1, q4_1, "q4_1", q4_1_x16) XTILE_AMX_EMU(Q5_0, q5_0, "q5_0", q5_0_x16)
    XTILE_AMX_EMU(Q5_1, q5_1, "q5_1", q5_1_x16) XTILE_AMX_EMU(IQ4_NL, iq4_nl, "iq4_nl", iq4_nl_x16)
    XTILE_AMX_EMU(Q4_K, q4_k, "q4_K", q4_k_x16) XTILE_AMX_EMU(Q5_K, q5_k, "q5_K", q5_k_x16)
    XTILE_AMX_EMU(Q6_K, q6_k, "q6_K", q6_k_x16) XTILE_AMX_EMU(IQ4_XS, iq4_xs, "iq4_xs", iq4_xs_x16)
#undef XTILE_AMX_EMU
};
// clang-format on

constexpr QuantizeKernel kQuantizeKernels[] = {
    {"quantize_acts_row__ref", Tier::ref, ref::quantize_row},
    // [avx2 quantize]
    {"quantize_acts_row__avx2", Tier::avx2, avx2::quantize_row},
    // [avx512 quantize]
    {"quantize_acts_row__avx512", Tier::avx512, avx512::quantize_row},
    // [amx quantize]
    {"quantize_acts_row__avx512", Tier::amx, avx512::quantize_row},
    // [amx-emu quantize]
    {"quantize_acts_row__ref", Tier::amx_emu, ref::quantize_row},
};

}  // namespace

std::span<const MatmulKernel> all_matmul_kernels() { return kMatmulKernels; }
std::span<const QuantizeKernel> all_quantize_kernels() { return kQuantizeKernels; }

const MatmulKernel* find_matmul_kernel(GgmlType type, Tier tier, MatmulShape shape) {
  for (const MatmulKernel& k : kMatmulKernels)
    if (k.type == type && k.tier == tier && k.shape == shape) return &k;
  return nullptr;
}

int gemm_min_m(Tier tier, GgmlType type) {
  // [switch points] ref has one kernel for both shapes.
  switch (tier) {
    // Measured, docs/KERNELS.md "Switch points". avx2: GEMV (chunks of 4 rows) up to M = 5.
    // avx512: the GEMV decodes the weights in registers for 8 rows at a time (more rows: each
    // weight tile read from memory once, from L2 for the other chunks) and beats the GEMM's
    // decoded panels through M = 64 (Q6_K, whose 8-row tile takes one group: 32). q8_0's GEMM
    // reads its bytes in place and wins in L3 from M = 5 (6144×2048 M = 8: 144-150 µs against
    // 165-170), but from memory, since the 5..8-row tiles' two prefetch distances, the GEMV wins
    // through M = 16 (the head at M = 8: 8.6-10.1 ms against 10.3-11.3; M = 16: 11.0-11.2 against
    // 12.0-12.4; mixed at 32), and in the model (`xtile bench -np 8` / `-np 16`, qwen3-0.6b and
    // 1.7b Q8_0) 8 sequences decode 16-30 % and 16 sequences 15-34 % faster with it.
    case Tier::avx2: return 6;
    case Tier::avx512:
      return type == GgmlType::Q8_0 ? 17 : type == GgmlType::Q6_K ? 33 : 65;
    // amx (its GEMV is the avx512 one): measured on a 16-vCPU Emerald Rapids guest, 16 threads,
    // the tile GEMM loses to the avx512 GEMV through M = 8 (q4_0 2048×6144 M=8: 84-99 µs against
    // 72-79, q4_K 106-109 / 80-85, q8_0 121-123 against the avx512 GEMM's 75-83; Q6_K, VNNI under
    // this tier, 4232 against the GEMV's 3092 µs on the 151936×2048 head) and wins from M = 16
    // (q4_0 117-136 / 158-161). Since e3036c9 one row tile of 9..16 rows streams
    // its weights without a panel; on the 2-vCPU Sapphire Rapids VM (docs/PERF.md, 2026-12-01) it
    // beats the GEMV in L3 at M = 8 (q4_0 6144×2048: ~200 against ~224 µs) but not in a server's
    // step (8 clients, switch at 5: 126 / 125 against 132 / 130 t/s), so 9 stays. Q6_K's byte
    // planes (no streaming K loop: every row tile unpacks its panel) beat the avx512 kernels
    // from M = 32 on that VM, 2 threads (2048×6144: 1.11-1.17 against 1.19-1.23 ms; M = 28
    // 1.14-1.16 against 1.05-1.10; the head at 32: 32.9-33.1 against 33.6-34.4 ms).
    case Tier::amx:
      return type == GgmlType::Q6_K ? 32 : 9;
    default: return 2;
  }
}

KernelSet select_kernels(Tier tier, GgmlType type) {
  // The GEMVs read the prefetch level on the pool's threads: resolve it here, where a bad
  // XTILE_GEMV_PREFETCH is an error of the caller's (the thread that loads the model); the same
  // for the streams per tile and Q8_0's exception.
  gemv_prefetch();
  gemv_streams();
  gemv_q8_0_four_l1();
  KernelSet set;
  set.tier = tier;
  set.type = type;
  set.gemv = find_matmul_kernel(type, tier, MatmulShape::gemv);
  set.gemm = find_matmul_kernel(type, tier, MatmulShape::gemm);
  if (!set.gemv || !set.gemm)
    fail("tier ", tier_name(tier), " has no kernel for weight type ", ggml_type_name(type));
  set.layout = set.gemm->layout;
  for (const QuantizeKernel& q : kQuantizeKernels)
    if (q.tier == tier) {
      set.quantize = q.fn;
      set.quantize_name = q.name;
    }
  if (!set.quantize) fail("tier ", tier_name(tier), " has no activation quantizer");
  set.gemm_min_m = gemm_min_m(tier, type);
  return set;
}

}  // namespace xtile
