#include "kernels/registry.h"

#include <array>

#include "base/error.h"
#include "kernels/ref/ref_kernels.h"
// Tier kernel headers (each tier's functions are compiled with only that tier's flags).
// [tier headers]
#include "kernels/avx2/avx2_kernels.h"
#include "kernels/avx512/avx512_kernels.h"
#include "kernels/amx/amx_kernels.h"

namespace xtile {

namespace {

using enum MatmulShape;

constexpr MatmulKernel kMatmulKernels[] = {
    // ref: the definition; one loop nest serves GEMV and GEMM.
    {"q8_0_gemv_1x1__ref", GgmlType::Q8_0, Tier::ref, gemv, Layout::q8_0_rows, 1, ref::q8_0_matmul},
    {"q8_0_gemm_1x1__ref", GgmlType::Q8_0, Tier::ref, gemm, Layout::q8_0_rows, 1, ref::q8_0_matmul},
    {"q4_0_gemv_1x1__ref", GgmlType::Q4_0, Tier::ref, gemv, Layout::q4_0_rows, 1, ref::q4_0_matmul},
    {"q4_0_gemm_1x1__ref", GgmlType::Q4_0, Tier::ref, gemm, Layout::q4_0_rows, 1, ref::q4_0_matmul},
    // [avx2 kernels] <rows>x<cols>: activation rows × weight rows of the register block.
    {"q8_0_gemv_1x64__avx2", GgmlType::Q8_0, Tier::avx2, gemv, Layout::q8_0_x16, 16,
     avx2::q8_0_gemv},
    {"q8_0_gemm_4x8__avx2", GgmlType::Q8_0, Tier::avx2, gemm, Layout::q8_0_x16, 16,
     avx2::q8_0_gemm},
    {"q4_0_gemv_1x64__avx2", GgmlType::Q4_0, Tier::avx2, gemv, Layout::q4_0_x16, 16,
     avx2::q4_0_gemv},
    {"q4_0_gemm_4x8__avx2", GgmlType::Q4_0, Tier::avx2, gemm, Layout::q4_0_x16, 16,
     avx2::q4_0_gemm},
    // [avx512 kernels]
    {"q8_0_gemv_1x64__avx512vnni", GgmlType::Q8_0, Tier::avx512, gemv, Layout::q8_0_x16, 16,
     avx512::q8_0_gemv},
    {"q8_0_gemm_4x32__avx512vnni", GgmlType::Q8_0, Tier::avx512, gemm, Layout::q8_0_x16, 16,
     avx512::q8_0_gemm},
    {"q4_0_gemv_1x64__avx512vnni", GgmlType::Q4_0, Tier::avx512, gemv, Layout::q4_0_x16, 16,
     avx512::q4_0_gemv},
    {"q4_0_gemm_4x32__avx512vnni", GgmlType::Q4_0, Tier::avx512, gemm, Layout::q4_0_x16, 16,
     avx512::q4_0_gemm},
    // [amx kernels]
    // AMX tiles for GEMM (docs/AMX.md); GEMV is memory-bound and stays on AVX-512 VNNI, which
    // every AMX CPU has (the same function as the avx512 tier's, hence its name).
    {"q8_0_gemv_1x64__avx512vnni", GgmlType::Q8_0, Tier::amx, gemv, Layout::q8_0_x16, 16,
     avx512::q8_0_gemv},
    {"q8_0_gemm_16x16__amx", GgmlType::Q8_0, Tier::amx, gemm, Layout::q8_0_x16, 16,
     amx::q8_0_gemm},
    {"q4_0_gemv_1x64__avx512vnni", GgmlType::Q4_0, Tier::amx, gemv, Layout::q4_0_x16, 16,
     avx512::q4_0_gemv},
    {"q4_0_gemm_16x16__amx", GgmlType::Q4_0, Tier::amx, gemm, Layout::q4_0_x16, 16,
     amx::q4_0_gemm},
    // [amx-emu kernels]
    // The amx kernels on software tiles, for GEMV (1-row tiles) as well as GEMM, so that tests on
    // any machine run the AMX kernel source on every shape.
    {"q8_0_gemv_16x16__amx_emu", GgmlType::Q8_0, Tier::amx_emu, gemv, Layout::q8_0_x16, 16,
     amx_emu::q8_0_gemm},
    {"q8_0_gemm_16x16__amx_emu", GgmlType::Q8_0, Tier::amx_emu, gemm, Layout::q8_0_x16, 16,
     amx_emu::q8_0_gemm},
    {"q4_0_gemv_16x16__amx_emu", GgmlType::Q4_0, Tier::amx_emu, gemv, Layout::q4_0_x16, 16,
     amx_emu::q4_0_gemm},
    {"q4_0_gemm_16x16__amx_emu", GgmlType::Q4_0, Tier::amx_emu, gemm, Layout::q4_0_x16, 16,
     amx_emu::q4_0_gemm},
};

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

int gemm_min_m(Tier tier) {
  // [switch points] ref has one kernel for both shapes.
  switch (tier) {
    // avx2 / avx512: measured, docs/KERNELS.md (GEMV vs GEMM at M = 1..8, 2048×2048 and
    // 6144×2048, weights streamed from memory): GEMV wins up to M = 4 (avx512) / 5 (avx2),
    // the GEMM's register block from there on.
    case Tier::avx2: return 6;
    case Tier::avx512: return 5;
    default: return 2;
  }
}

KernelSet select_kernels(Tier tier, GgmlType type) {
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
  set.gemm_min_m = gemm_min_m(tier);
  return set;
}

}  // namespace xtile
