// The kernel catalogue: a data table of (weight type × tier × GEMV/GEMM) kernels, and the choice
// made once at load (DESIGN.md §2: the hot path calls stored function pointers).
#pragma once

#include <span>
#include <string_view>

#include "kernels/kernel_api.h"

namespace xtile {

enum class MatmulShape : uint8_t { gemv, gemm };

struct MatmulKernel {
  std::string_view name;  // "<type>_<shape>_<rows>x<cols>__<isa>", as in bench and test output
  GgmlType type;
  Tier tier;
  MatmulShape shape;
  Layout layout;
  int n_step;  // n ranges given to the kernel start at multiples of this
  MatmulFn fn;
};

struct QuantizeKernel {
  std::string_view name;
  Tier tier;
  QuantizeRowFn fn;
};

std::span<const MatmulKernel> all_matmul_kernels();
std::span<const QuantizeKernel> all_quantize_kernels();
const MatmulKernel* find_matmul_kernel(GgmlType type, Tier tier, MatmulShape shape);  // or null

// Everything a matmul on one weight type needs, chosen once for a tier.
struct KernelSet {
  Tier tier = Tier::ref;
  GgmlType type = GgmlType::Q8_0;
  Layout layout = Layout::q8_0_rows;
  const MatmulKernel* gemv = nullptr;
  const MatmulKernel* gemm = nullptr;
  QuantizeRowFn quantize = nullptr;
  std::string_view quantize_name;
  int gemm_min_m = 1;  // M >= gemm_min_m takes the GEMM kernel (switch point, docs/KERNELS.md)
};

// Throws xtile::Error when the tier has no kernel for the type.
KernelSet select_kernels(Tier tier, GgmlType type);

// Measured GEMV→GEMM switch point per tier and weight type (docs/KERNELS.md).
int gemm_min_m(Tier tier, GgmlType type);

}  // namespace xtile
