// A start-up self-check of a kernel tier against ref (DESIGN.md §3: every tier gives ref's
// bytes). The exactness tests prove it for this build; this checks the build the user runs,
// which may have been compiled with other flags (-ffp-contract=fast lets the compiler fuse a
// kernel's multiply and add, which no macro reveals) or run in another floating-point
// environment. Small: one 40 × 256 matrix per weight type, a GEMV row and a GEMM batch, well
// under a millisecond per tier.
#pragma once

#include "cpu/thread_pool.h"
#include "kernels/registry.h"

namespace xtile {

// Runs `kernels` (one tier's choice for one weight type) and ref's kernels for the same type on
// the same small random matrix and activations, through the same driver (quantize_activations,
// matmul_quantized, under the contract's MXCSR), once with M = 1 and once with a batch that
// takes the GEMM kernel. Throws xtile::Error naming the tier, the kernel, the first differing
// output and the likely causes when any output byte differs.
void self_check_kernels(ThreadPool& pool, const KernelSet& kernels);

// self_check_kernels for Q8_0 and Q4_0 on `tier`, once per process per tier (later calls
// return at once; a failed check is repeated, and fails again, on the next call). ref is the
// definition and is not checked against itself.
void self_check_tier_once(ThreadPool& pool, Tier tier);

}  // namespace xtile
