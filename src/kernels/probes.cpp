#include "kernels/probes.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <vector>

#include "base/error.h"
#include "kernels/amx/amx_kernels.h"

namespace xtile {

namespace {
double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}
std::atomic<int64_t> g_sink{0};  // keeps the probes' results observable
// ops_per_iteration × iterations per second of `loop` on every thread of the pool at once: the
// iteration count calibrated on one thread to last ~seconds / 4, the best of 3 runs.
double peak_of(ThreadPool& pool, const std::function<int64_t(int64_t)>& loop,
               double ops_per_iteration, double seconds) {
  int64_t iters = 1 << 12;
  for (;;) {
    const double t0 = now_seconds();
    g_sink += loop(iters);
    if (now_seconds() - t0 > seconds / 4 || iters > (int64_t{1} << 40)) break;
    iters *= 2;
  }
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    const double t0 = now_seconds();
    pool.run([&](int, int) { g_sink += loop(iters); });
    const double dt = now_seconds() - t0;
    best = std::max(best, ops_per_iteration * static_cast<double>(iters) * pool.size() / dt);
  }
  return best;
}

}  // namespace

double measure_int8_peak(ThreadPool& pool, Tier tier, double seconds) {
  const CpuCaps& caps = cpu_caps();
  if (tier == Tier::amx && caps.tier_available(Tier::amx))
    return measure_amx_tile_ops(pool, 16, 64, seconds);
  std::function<int64_t(int64_t)> loop;
  double ops_per_iteration = 0;
  if ((tier == Tier::avx512 || tier == Tier::amx) && caps.tier_available(Tier::avx512)) {
    // amx without AMX here: its kernels' vector part (the epilogue) on AVX-512
    loop = probe::vnni_loop_avx512;
    ops_per_iteration = 16.0 * 64 * 2;  // 16 instructions × 64 MACs × 2 ops
  } else if (tier == Tier::avx2 && caps.tier_available(Tier::avx2)) {
    loop = probe::maddubs_loop_avx2;
    ops_per_iteration = 8.0 * 32 * 2;
  } else {
    return 0.0;
  }
  return peak_of(pool, loop, ops_per_iteration, seconds);
}

double measure_amx_tile_ops(ThreadPool& pool, int rows, int k_bytes, double seconds) {
  if (rows < 1 || rows > 16 || k_bytes < 4 || k_bytes > 64 || k_bytes % 4 != 0)
    fail("amx tile probe: A tiles of ", rows, " rows x ", k_bytes,
         " bytes (rows 1..16, bytes a multiple of 4 up to 64)");
  if (!cpu_caps().tier_available(Tier::amx)) return 0.0;
  // 4 TDPBSSD per iteration, rows · 16 · k_bytes multiply-adds each, 2 ops per multiply-add
  const double ops_per_iteration = 4.0 * rows * 16 * k_bytes * 2;
  return peak_of(
      pool,
      [rows, k_bytes](int64_t iterations) { return amx::tdp_loop(iterations, rows, k_bytes); },
      ops_per_iteration, seconds);
}

double measure_f32_fma_peak(ThreadPool& pool, Tier tier, double seconds) {
  const CpuCaps& caps = cpu_caps();
  if (tier == Tier::avx512 && caps.tier_available(Tier::avx512))
    return peak_of(pool, probe::fma_loop_avx512, 16.0 * 16 * 2, seconds);
  if (tier == Tier::avx2 && caps.tier_available(Tier::avx2))
    return peak_of(pool, probe::fma_loop_avx2, 12.0 * 8 * 2, seconds);
  return 0.0;
}

double measure_read_bandwidth(ThreadPool& pool, const AlignedBuffer& buf, int passes) {
  const CpuCaps& caps = cpu_caps();
  uint64_t (*sum)(const uint8_t*, size_t) = nullptr;
  if (caps.tier_available(Tier::avx512)) sum = probe::read_sum_avx512;
  else if (caps.tier_available(Tier::avx2)) sum = probe::read_sum_avx2;
  const size_t chunk = 1 << 20;
  const int64_t chunks = static_cast<int64_t>(buf.size() / chunk);
  double best = 0.0;
  for (int p = 0; p < passes; ++p) {
    const double t0 = now_seconds();
    pool.parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1, int) {
      uint64_t local = 0;
      const uint8_t* base = buf.data() + c0 * chunk;
      const size_t bytes = static_cast<size_t>(c1 - c0) * chunk;
      if (sum) {
        local = sum(base, bytes);
      } else {
        const auto* w = reinterpret_cast<const uint64_t*>(base);
        for (size_t i = 0; i < bytes / 8; ++i) local ^= w[i];
      }
      g_sink += static_cast<int64_t>(local);
    });
    const double dt = now_seconds() - t0;
    best = std::max(best, static_cast<double>(chunks * chunk) / dt);
  }
  return best;
}

AlignedBuffer make_read_probe_buffer(size_t bytes) {
  AlignedBuffer buf(bytes);
  auto* w = reinterpret_cast<uint64_t*>(buf.data());
  uint64_t x = 0x9e3779b97f4a7c15u;  // xorshift: every 8 bytes differ
  for (size_t i = 0; i < bytes / 8; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w[i] = x;
  }
  return buf;
}

}  // namespace xtile
