// Ceilings of this machine, measured by the same binary that runs the kernels (DESIGN.md §7):
// the streaming read bandwidth and the register-only int8 dot-product peak of a tier.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/aligned_buffer.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"

namespace xtile {

// int8 ops (2 per multiply-accumulate) per second of the tier's dot-product instruction in a
// register-only loop on every thread of the pool (TDPBSSD on full tiles for amx where the CPU
// and OS allow it, VPDPBUSD for avx512, VPMADDUBSW+VPMADDWD for avx2). 0 if the tier has no such
// instruction here.
double measure_int8_peak(ThreadPool& pool, Tier tier, double seconds = 0.3);

// int8 ops (2 per multiply-accumulate of useful work) per second of TDPBSSD with A tiles of
// `rows` × `k_bytes` (B: k_bytes / 4 rows × 64 bytes, C: rows × 16 int32) on every thread of the
// pool; (16, 64) is the amx tier's measure_int8_peak. What a kernel that cannot fill the tiles
// (a few decoding rows, a 16-wide sub-block) keeps of the unit. 0 where AMX is unavailable;
// throws on a shape no tile has (rows 1..16, k_bytes a multiple of 4 up to 64).
double measure_amx_tile_ops(ThreadPool& pool, int rows, int k_bytes, double seconds = 0.3);

// f32 FLOPs (2 per lane of a fused multiply-add) per second of VFMADD231PS in a register-only
// loop on every thread of the pool: on ymm for avx2, on zmm for avx512 (the widths attention's
// 8- and 16-wide objects run). 0 for another tier or one this CPU lacks.
double measure_f32_fma_peak(ThreadPool& pool, Tier tier, double seconds = 0.3);

// Bytes per second reading `buf` (much larger than the caches) once per pass, split over the
// pool's threads; best of `passes`.
double measure_read_bandwidth(ThreadPool& pool, const AlignedBuffer& buf, int passes = 5);

// A buffer of `bytes` for measure_read_bandwidth, every page written with different contents,
// so that no page-merging (KSM, a hypervisor's same-page sharing) or compressing memory layer
// can make the probe read fewer physical bytes than it counts. (On the development VM the probe
// is bimodal, ~45-50 or ~80-85 GB/s for two threads, switching within seconds; distinct pages did
// not change that, nor did huge pages: the host's placement of the two vCPUs is the likely
// cause, see docs/PERF.md.)
AlignedBuffer make_read_probe_buffer(size_t bytes);

namespace probe {
// Register-only loops; each returns a value derived from its accumulators so it is not elided.
int64_t vnni_loop_avx512(int64_t iterations);  // 16 × VPDPBUSD zmm per iteration
int64_t maddubs_loop_avx2(int64_t iterations);  // 8 × (VPMADDUBSW + VPMADDWD + VPADDD) ymm
int64_t fma_loop_avx512(int64_t iterations);    // 16 × VFMADD231PS zmm per iteration
int64_t fma_loop_avx2(int64_t iterations);      // 12 × VFMADD231PS ymm per iteration
uint64_t read_sum_avx512(const uint8_t* p, size_t bytes);
uint64_t read_sum_avx2(const uint8_t* p, size_t bytes);
}  // namespace probe

}  // namespace xtile
