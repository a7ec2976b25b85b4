#include "ops/tier_self_check.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/error.h"
#include "base/float_env.h"
#include "kernels/pack/pack.h"
#include "ops/matmul.h"
#include "quant/quant.h"
#include "quant/quantize_types.h"

namespace xtile {
namespace {

constexpr int64_t kRows = 40;  // not a multiple of 16: the last x16 group is padded
constexpr int64_t kK = 256;    // 8 blocks of 32

// A fixed pseudo-random sequence (no <random>: the same values on every standard library),
// roughly uniform in [-1, 1), with every 7th block scaled down by 2^-20 so that small scales
// and activation values near the bottom of the float range take part.
std::vector<float> test_values(int64_t count, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(count));
  uint64_t x = seed;
  for (int64_t i = 0; i < count; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const float u = static_cast<float>(static_cast<int32_t>(x >> 32)) * 0x1p-31f;
    v[static_cast<size_t>(i)] = (i / 32) % 7 == 3 ? u * 0x1p-20f : u;
  }
  return v;
}

// The GGUF rows of a kRows × kK matrix of `type` (any quantized weight type: kK is one
// 256-element superblock).
std::vector<uint8_t> gguf_rows(GgmlType type) {
  if (!can_quantize_to(type))
    fail("kernel self-check: no test matrix for weight type ", ggml_type_name(type));
  const std::vector<float> w = test_values(kRows * kK, 0x5eed0001u);
  const size_t row_bytes = ggml_row_bytes(type, kK);
  std::vector<uint8_t> out(static_cast<size_t>(kRows) * row_bytes);
  for (int64_t r = 0; r < kRows; ++r) quantize_row(type, w.data() + r * kK, out.data() + r * row_bytes, kK);
  return out;
}

struct Packed {
  AlignedBuffer buffer;
  PackedMatrix matrix;
};

Packed pack(const KernelSet& ks, const std::vector<uint8_t>& rows) {
  Packed p;
  const size_t bytes = packed_bytes(ks.layout, kRows, kK);
  p.buffer = AlignedBuffer(bytes);
  pack_matrix(ks.layout, rows.data(), kRows, kK, p.buffer.data());
  p.matrix = PackedMatrix{ks.type, ks.layout, kRows, kK, p.buffer.data(), bytes};
  return p;
}

std::vector<float> run(ThreadPool& pool, const KernelSet& ks, const PackedMatrix& w,
                       const std::vector<float>& x, int64_t m) {
  ActBuffer acts;
  quantize_activations(pool, ks.quantize, x.data(), kK, m, kK, acts);
  std::vector<float> y(static_cast<size_t>(m * kRows));
  matmul_quantized(pool, ks, w, acts.acts(), y.data(), kRows);
  return y;
}

}  // namespace

void self_check_kernels(ThreadPool& pool, const KernelSet& kernels) {
  ContractFloatEnv env;
  const KernelSet ref = select_kernels(Tier::ref, kernels.type);
  const std::vector<uint8_t> rows = gguf_rows(kernels.type);
  const Packed w = pack(kernels, rows);
  const Packed w_ref = pack(ref, rows);
  // M = 1 takes the GEMV kernel; the batch takes the GEMM kernel and is not a multiple of the
  // register blocks' row counts.
  const int64_t gemm_m = std::max<int64_t>(kernels.gemm_min_m, 2) + 3;
  for (const int64_t m : {int64_t{1}, gemm_m}) {
    const std::vector<float> x = test_values(m * kK, 0x5eed0002u + static_cast<uint64_t>(m));
    const std::vector<float> got = run(pool, kernels, w.matrix, x, m);
    const std::vector<float> want = run(pool, ref, w_ref.matrix, x, m);
    if (std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0) continue;
    size_t i = 0;
    while (std::memcmp(&got[i], &want[i], sizeof(float)) == 0) ++i;
    const MatmulKernel* kernel = m >= kernels.gemm_min_m ? kernels.gemm : kernels.gemv;
    fail("kernel self-check failed: tier ", tier_name(kernels.tier), ", ",
         ggml_type_name(kernels.type), " kernel ", kernel->name, " (M = ", m, ", N = ", kRows,
         ", K = ", kK, ") gives ", got[i], " at row ", i / kRows, ", column ", i % kRows,
         " where ref gives ", want[i],
         ": this build does not compute the contract's bits (were xtile's sources compiled with "
         "-ffp-contract=fast, -ffast-math or other float flags than its CMakeLists.txt sets?); "
         "run with --kernels ref to compare, and see docs/KERNELS.md");
  }
}

void self_check_tier_once(ThreadPool& pool, Tier tier) {
  if (tier == Tier::ref) return;
  static std::array<std::atomic<bool>, kTierCount> passed{};
  static std::mutex mutex;
  const size_t t = static_cast<size_t>(tier);
  if (passed[t].load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(mutex);
  if (passed[t].load(std::memory_order_relaxed)) return;
  // Every weight type the ladder runs (each has its own reader in every tier).
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                        GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q4_K, GgmlType::Q5_K,
                        GgmlType::Q6_K, GgmlType::IQ4_XS})
    self_check_kernels(pool, select_kernels(tier, type));
  passed[t].store(true, std::memory_order_release);
}

}  // namespace xtile
