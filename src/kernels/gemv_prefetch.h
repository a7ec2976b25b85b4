// Which cache the avx512 GEMV's software prefetch fills: its 1..4-row tiles request each
// weight stream's lines 8 KB ahead, and the better target depends on the core, not on the
// kernel. Prefetching never changes a result (DESIGN.md §3): only where the weight bytes wait
// for their loads.
//
//  - L1 (PREFETCHT0), the default: on the Zen 5 VM the head GEMV read Q6_K at 53.5 -> 62.3 GB/s
//    and generation ran 7-16 % faster than with T1 (docs/PERF.md, fourteenth session); the AMX
//    hosts read at 90-106 % of the probe with it.
//  - L2 (PREFETCHT1) on AMD family 19h (Zen 3, Zen 4): on a 2-vCPU Zen 4 VM (2026-12-04, three
//    alternated rounds) T0 left generation 20-30 % slower: qwen3-0.6b Q4_0 tg64 61-67 t/s with
//    T0, 77-86 with T1; the Qwen3-30B-A3B 4-layer cut 64-72 -> 81-93 (docs/PERF.md,
//    twenty-sixth session). The lines still reach L1 in time from L2, by the hardware
//    prefetcher's stride stream; T0 from this far ahead fills L1 with lines evicted before use.
//
// The avx2 tier follows the level for its 32-element-block types only (Q4_0, Q8_0, ...: a row
// read as 4 streams): with T1 on the same VM its generation ran 5-55 % faster on qwen3-0.6b /
// 1.7b Q4_0 and Q8_0 in 12 of 12 alternated pairs (twenty-seventh session). Its 256-element
// superblock types (one stream per row) keep T0 everywhere: the 30B-A3B cut's Q6_K head was
// 20-40 % slower with T1 (twenty-sixth session).
//
// XTILE_GEMV_PREFETCH=l1|l2 in the environment overrides the choice (to measure a new CPU).
//
// How many weight streams the GEMV's one-row tiles read at once (avx512: also two-row), also by
// the core: each x16 group (16 rows × all of K) is one sequential stream, and a tile of 4 groups
// reads 4 of them side by side, one of 1 group reads the thread's rows as one stream. (The avx2
// tier's superblock types read one stream on every core: avx2_matmul.cpp, kOneRowHalves.)
//  - 4, the default: one stream did not keep enough misses in flight on the first machines
//    (2026-11-25), and every table since on Zen 5 and the AMX hosts was measured with 4.
//  - 1 on AMD family 19h: on the 2-vCPU Zen 4 VM (2026-12-05, twenty-ninth session) the
//    151936 × 2048 head from memory on one thread took Q4_0 7.9-8.3 -> 5.5-6.0 ms, Q8_0
//    14-15 -> 10.6-11.4, Q6_K 12.5-13.7 -> 9.5-11.6 with one stream (the probe: 31 GB/s), and
//    the sweep of qwen3-0.6b's GEMVs on two threads read 85-91 % of the probe -> 89-99 %. The
//    core's own stream prefetcher follows one stream to the bandwidth; four interleaved ones,
//    each restarting every group (18 KB of Q4_0 at K = 2048), it did not. The avx2 tier's
//    32-element types likewise: tg64 in the model 20-32 % faster in the VM's fast memory state.
//    With one stream, some types request nothing ahead at all and leave it to that prefetcher
//    (avx512: Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL; avx2: Q8_0; thirty-first session, the kernels'
//    kPrefetchPerStream and kOneStreamSpan), and some superblock types request further ahead
//    than on other cores (avx512 IQ4_XS and Q5_K 12 KB, avx2 all of them 4 KB; thirty-second
//    session, kPrefetchPerStream and kOneStreamAhead).
//    Zen 3 shares the family, the level and the streams. Measured once there (a 2-vCPU Zen 3 VM,
//    2026-12-07, forty-third session: `xtile bench -p 0 -n 64 -r 2 --roofline` under each of
//    the four settings, two rounds): undecided. qwen3-0.6b Q4_0 ran fastest with 1 stream + L2
//    in both rounds, qwen3-1.7b Q4_0 with 4 streams + L2; but qwen3-1.7b Q8_0, whose kernels
//    run the same code under either level with one stream (Q8_0 requests nothing there), read
//    13.4 / 12.0 t/s under L2 and 16.4 / 14.6 under L1: that VM's noise between runs is as
//    large as any difference measured. Kept, but for Q8_0 (below), which the next session
//    measured with the probe beside each run and the kernels' sweep.
// XTILE_GEMV_STREAMS=1|4 overrides it.
//
// One exception by type and core: the avx2 tier's Q8_0 one-row tile on Zen 3 (AMD family 19h,
// models 00-0Fh and 20-5Fh; Zen 4 is 10-1Fh, 60-7Fh, A0-AFh) reads four streams, each requesting
// 1 KB ahead to L1, whatever the two settings say for the other types. On the 2-vCPU Zen 3 VM
// (2026-12-07, forty-fourth session) Q8_0 with the family's one stream (nothing requested: the
// core's prefetcher alone) read 61-73 % of the probe in the model, 76-89 % this way:
// `xtile bench -p 0 -n 64 -r 2 --roofline`, three alternated rounds, qwen3-0.6b Q8_0 38.7 /
// 43.4 / 39.3 -> 43.9 / 58.2 / 46.2 t/s, qwen3-1.7b Q8_0 14.3 / 16.3 / 17.0 -> 20.5 / 22.7 /
// 19.1; the sweep of qwen3-0.6b's GEMVs (`xtile_kernel_bench --sweep`) 62-85 % -> 76-93 %. The
// other 32-element types measured no better (Q4_0, Q4_1) or far worse that way (Q5_0 and IQ4_NL
// 49-71 % against 75-95 %), and one Q8_0 stream with the others' 8 KB ahead no better than none
// (64-79 %); on Zen 4 one stream with nothing requested was the fastest for Q8_0 (thirty-first
// session), so the exception is Zen 3's.
// XTILE_GEMV_Q8_0=four-l1|shared overrides it (shared: Q8_0 as the other types).
#pragma once

#include <atomic>
#include <string_view>

#include "cpu/cpu_caps.h"

namespace xtile {

enum class PrefetchLevel : int { kL1 = 1, kL2 = 2 };

std::string_view prefetch_level_name(PrefetchLevel level);  // "L1", "L2"
// The level for this CPU (the table above), without the environment.
PrefetchLevel default_gemv_prefetch(const CpuCaps& caps);

namespace gemv_prefetch_detail {
extern std::atomic<int> level;    // 0 until resolved
extern std::atomic<int> streams;  // 0 until resolved
extern std::atomic<int> q8_0;     // 0 until resolved, 1 shared, 2 four streams to L1
int resolve();
int resolve_streams();
int resolve_q8_0();
// A setting's value: one relaxed load once resolved. Always inlined: the kernels' ISA objects
// must not emit a weak copy of it (TierSymbolsTest).
inline __attribute__((always_inline)) int once(const std::atomic<int>& v, int (*resolve)()) {
  const int x = v.load(std::memory_order_relaxed);
  return x != 0 ? x : resolve();
}
}  // namespace gemv_prefetch_detail

// The process's level: the environment's XTILE_GEMV_PREFETCH, else default_gemv_prefetch of
// cpu_caps(); resolved once. Read by the kernels once per tile: one relaxed load.
inline PrefetchLevel gemv_prefetch() {
  using namespace gemv_prefetch_detail;  // NOLINT(google-build-using-namespace)
  return static_cast<PrefetchLevel>(once(level, resolve));
}
inline bool gemv_prefetch_to_l2() {
  return gemv_prefetch() == PrefetchLevel::kL2;
}

// For tests and benchmarks: sets the level (every later GEMV uses it).
void set_gemv_prefetch(PrefetchLevel level);

// Streams per one- or two-row GEMV tile for this CPU (1 or 4), without the environment.
int default_gemv_streams(const CpuCaps& caps);

// The process's streams per tile: XTILE_GEMV_STREAMS, else default_gemv_streams of cpu_caps();
// resolved once, read once per GEMV call.
inline int gemv_streams() {
  using namespace gemv_prefetch_detail;  // NOLINT(google-build-using-namespace)
  return once(streams, resolve_streams);
}

// For tests and benchmarks: 1 or 4 (every later GEMV uses it).
void set_gemv_streams(int streams);

// Whether the avx2 Q8_0 one-row tile reads four streams to L1 on this CPU (the exception above),
// without the environment.
bool default_gemv_q8_0_four_l1(const CpuCaps& caps);

// The process's choice: XTILE_GEMV_Q8_0, else default_gemv_q8_0_four_l1 of cpu_caps(); resolved
// once, read once per GEMV call and tile.
inline __attribute__((always_inline)) bool gemv_q8_0_four_l1() {
  using namespace gemv_prefetch_detail;  // NOLINT(google-build-using-namespace)
  return once(q8_0, resolve_q8_0) == 2;
}

// For tests and benchmarks (every later GEMV uses it).
void set_gemv_q8_0_four_l1(bool four_l1);

}  // namespace xtile
