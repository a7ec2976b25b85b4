// Kernel benchmarks at real model shapes (DESIGN.md §7). For every hardware tier this CPU runs
// (avx2, avx512, amx), weight type, shape N×K and batch M, reports int8 GOP/s,
// weight GB/s, and the ratios to two ceilings measured by this same binary at start-up:
// streaming read bandwidth (all threads) and the tier's register-only int8 dot-product peak.
//
//   xtile_kernel_bench [--threads=N] [--shapes=all|small] [--types=q4_0,q8_0,...|all]
//                      [--gemm-from=M] [google-benchmark flags]
//   xtile_kernel_bench --sweep[=REPS] [--sweep-rows=M] [--threads=N] [--types=...]
//                      [--tier=avx512|avx2|...] [--gemm-from=M]
// Default types: q4_0, q8_0, q4_K, q5_K, q6_K, iq4_xs (the bulk of the files people download).
// --gemm-from=M runs the GEMM kernel from batch M on instead of the registry's threshold (both
// give the same bits): where the GEMV/GEMM crossover lies on this CPU; with --sweep, which kernel
// a pass of M rows runs.
//
// --sweep measures generation's regime instead of one matrix at a time: the GEMVs (M = 1) of
// one token of qwen3-0.6b (28 layers of Q|K|V, output, gate|up, down: 28 distinct matrices of
// each shape, ~240 MB in Q4_0, far beyond the last-level cache) back to back, as a forward pass
// issues them, each pass bracketed by read-bandwidth probes. It prints the weight bytes per
// second of each pass against the larger of its two probes: what the kernels reach when every
// matrix starts cold and the threads meet at a barrier after each, on a machine whose bandwidth
// moves between passes (see docs/PERF.md). --sweep-rows=M runs each matrix on M activation rows
// instead of one: a server's step of M decoding sequences (issue 13), where the same bytes
// stream once for M rows and the question is how much the M-fold arithmetic adds to a pass.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "base/aligned_buffer.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "kernels/pack/pack.h"
#include "kernels/probes.h"
#include "kernels/registry.h"
#include "model/synth_blocks.h"
#include "ops/matmul.h"
#include "quant/quant.h"
#include "quant/weight_terms.h"

namespace xtile {
namespace {

struct Shape {
  int64_t n, k;
  const char* what;
};
// N × K of the projections that dominate Qwen3 / Llama-3 inference.
const Shape kShapes[] = {
    {2048, 2048, "qwen3-1.7b attn_output"}, {6144, 2048, "qwen3-1.7b ffn_up"},
    {2048, 6144, "qwen3-1.7b ffn_down"},    {151936, 2048, "qwen3-1.7b output"},
    {4096, 14336, "llama-3-8b ffn_down"},
};
const int64_t kBatches[] = {1, 2, 4, 8, 16, 32, 64, 128, 512};

struct Ceilings {
  double read_bytes_per_s = 0;
  std::map<int, double> peak_ops_per_s;  // by tier
};

ThreadPool* g_pool = nullptr;
Ceilings g_ceilings;
int64_t g_gemm_from = 0;  // --gemm-from; 0: the registry's gemm_min_m

// Packed random weights per (tier layout, shape), built once and shared by all batch sizes.
struct Weights {
  AlignedBuffer packed;
  PackedMatrix matrix;
};
const Weights& weights_for(Layout layout, const Shape& s) {
  static std::map<std::string, std::unique_ptr<Weights>> cache;
  const std::string key = std::string(layout_name(layout)) + std::to_string(s.n) + "x" +
                          std::to_string(s.k);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  const GgmlType type = layout_type(layout);
  std::vector<uint8_t> rows(ggml_row_bytes(type, s.k) * static_cast<size_t>(s.n));
  // Realistic blocks (xtile synth's: every code used, sane scales), never NaN or denormal.
  synth::Rng rng{static_cast<uint64_t>(s.n * 31 + s.k)};
  synth::fill_random_blocks(type, rng, rows.size() / ggml_traits(type).type_size, rows.data());
  auto w = std::make_unique<Weights>();
  w->packed = AlignedBuffer(packed_bytes(layout, s.n, s.k));
  pack_matrix(layout, rows.data(), s.n, s.k, w->packed.data());
  w->matrix = PackedMatrix{type, layout, s.n, s.k, w->packed.data(), w->packed.size()};
  return *cache.emplace(key, std::move(w)).first->second;
}

void run_matmul(benchmark::State& state, Tier tier, GgmlType type, Shape shape, int64_t m) {
  KernelSet ks = select_kernels(tier, type);
  if (g_gemm_from > 0) ks.gemm_min_m = g_gemm_from;
  const Weights& w = weights_for(ks.layout, shape);
  std::vector<float> x(static_cast<size_t>(m * shape.k));
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  ActBuffer acts;
  quantize_activations(*g_pool, ks.quantize, x.data(), shape.k, m, shape.k, acts);
  AlignedBuffer y(static_cast<size_t>(m * shape.n) * sizeof(float));
  for (auto _ : state) {
    matmul_quantized(*g_pool, ks, w.matrix, acts.acts(), y.as<float>(), shape.n);
    benchmark::ClobberMemory();
  }
  const double iters = static_cast<double>(state.iterations());
  const double ops = 2.0 * static_cast<double>(m) * shape.n * shape.k;
  const double bytes = static_cast<double>(w.matrix.bytes);
  using benchmark::Counter;
  state.counters["GOPs"] = Counter(ops * iters / 1e9, Counter::kIsRate);
  state.counters["GBs"] = Counter(bytes * iters / 1e9, Counter::kIsRate);
  state.SetLabel(std::string(m >= ks.gemm_min_m ? ks.gemm->name : ks.gemv->name) + " " + shape.what);
}

// One pass of --sweep per repetition: probe, the token's GEMVs, probe.
int run_sweep(ThreadPool& pool, Tier tier, const std::vector<GgmlType>& types, int reps,
              int64_t rows) {
  struct Proj {
    int64_t n, k;
  };
  // qwen3-0.6b: hidden 1024, 16 query and 8 KV heads of 128, FFN 3072; Q|K|V and gate|up fused
  // as Session fuses them.
  const Proj layer[] = {{4096, 1024}, {1024, 2048}, {6144, 1024}, {1024, 3072}};
  constexpr int kLayers = 28;
  AlignedBuffer probe = make_read_probe_buffer(size_t{512} << 20);
  for (GgmlType type : types) {
    KernelSet ks = select_kernels(tier, type);
    if (g_gemm_from > 0) ks.gemm_min_m = g_gemm_from;
    std::vector<Weights> mats;
    mats.reserve(kLayers * std::size(layer));
    double bytes = 0;
    for (int l = 0; l < kLayers; ++l)
      for (const Proj& p : layer) {
        std::vector<uint8_t> rows(ggml_row_bytes(type, p.k) * static_cast<size_t>(p.n));
        synth::Rng rng{static_cast<uint64_t>(l * 131 + p.n * 31 + p.k)};
        synth::fill_random_blocks(type, rng, rows.size() / ggml_traits(type).type_size,
                                  rows.data());
        Weights w;
        w.packed = AlignedBuffer(packed_bytes(ks.layout, p.n, p.k));
        pack_matrix(ks.layout, rows.data(), p.n, p.k, w.packed.data());
        w.matrix = PackedMatrix{type, ks.layout, p.n, p.k, w.packed.data(), w.packed.size()};
        bytes += static_cast<double>(w.matrix.bytes);
        mats.push_back(std::move(w));
      }
    std::vector<float> x(static_cast<size_t>(rows) * 3072), y(static_cast<size_t>(rows) * 6144);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    for (float& v : x) v = normal(rng);
    std::map<int64_t, ActBuffer> acts;  // by K
    for (const Proj& p : layer)
      quantize_activations(pool, ks.quantize, x.data(), p.k, rows, p.k, acts[p.k]);
    // prefetch: each GEMV names the next matrix, as Session does, so that waiting threads
    // prefetch their share of it (ThreadPool::prefetch_while_waiting).
    auto pass = [&](bool prefetch) {
      for (size_t i = 0; i < mats.size(); ++i) {
        const PackedMatrix& w = mats[i].matrix;
        const PackedMatrix* next = prefetch && i + 1 < mats.size() ? &mats[i + 1].matrix : nullptr;
        matmul_quantized(pool, ks, w, acts[w.k].acts(), y.data(), w.n, next);
      }
    };
    pass(false);  // first touch of the packed pages
    std::printf("sweep %s/%s: %zu matrices, %.1f MB per pass, %lld row%s (%s)\n",
                std::string(ggml_type_name(type)).c_str(), std::string(tier_name(tier)).c_str(),
                mats.size(), bytes / 1e6, static_cast<long long>(rows), rows == 1 ? "" : "s",
                std::string(rows >= ks.gemm_min_m ? ks.gemm->name : ks.gemv->name).c_str());
    for (int r = 0; r < reps; ++r)
      for (bool prefetch : {false, true}) {
        const double before = measure_read_bandwidth(pool, probe, 2);
        const auto t0 = std::chrono::steady_clock::now();
        pass(prefetch);
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double after = measure_read_bandwidth(pool, probe, 2);
        const double rate = bytes / s, ceiling = std::max(before, after);
        std::printf(
            "  pass %d%s: %.2f ms, %.1f GB/s of weights; probes %.1f / %.1f GB/s: %.0f %%\n", r + 1,
            prefetch ? " prefetching the next matrix" : "", s * 1e3, rate / 1e9, before / 1e9,
            after / 1e9, 100.0 * rate / ceiling);
      }
  }
  return 0;
}

// A reporter that adds the ratios to the ceilings (rate counters arrive already per second).
class CeilingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> out = runs;
    for (Run& r : out) {
      auto gops = r.counters.find("GOPs");
      auto gbs = r.counters.find("GBs");
      if (gops == r.counters.end() || gbs == r.counters.end()) continue;
      const double ops_per_s = gops->second.value * 1e9;
      const double bytes_per_s = gbs->second.value * 1e9;
      const int tier = tier_of(r.benchmark_name());
      if (g_ceilings.read_bytes_per_s > 0)
        r.counters["bw%"] = 100.0 * bytes_per_s / g_ceilings.read_bytes_per_s;
      auto peak = g_ceilings.peak_ops_per_s.find(tier);
      if (peak != g_ceilings.peak_ops_per_s.end() && peak->second > 0)
        r.counters["peak%"] = 100.0 * ops_per_s / peak->second;
    }
    ConsoleReporter::ReportRuns(out);
  }

 private:
  static int tier_of(const std::string& name) {
    for (int t = 0; t < kTierCount; ++t) {
      // Appended piece by piece: GCC 12 reports a false -Wrestrict on "/" + name + "/".
      std::string needle = "/";
      needle.append(tier_name(Tier(t))).append("/");
      if (name.find(needle) != std::string::npos) return t;
    }
    return -1;
  }
};

}  // namespace
}  // namespace xtile

int main(int argc, char** argv) {
  using namespace xtile;
  int threads = 2;
  bool small = false;
  int sweep_reps = 0;
  int64_t sweep_rows = 1;
  std::optional<Tier> sweep_tier;  // --tier; default: the best this CPU runs
  bool types_set = false;
  std::vector<GgmlType> types = {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K,
                                 GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS};
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else if (std::strcmp(argv[i], "--sweep") == 0) {
      sweep_reps = 10;
    } else if (std::strncmp(argv[i], "--sweep=", 8) == 0) {
      sweep_reps = std::max(1, std::atoi(argv[i] + 8));
    } else if (std::strncmp(argv[i], "--sweep-rows=", 13) == 0) {
      sweep_rows = std::atoi(argv[i] + 13);
      if (sweep_rows < 1 || sweep_rows > 512) {
        std::fprintf(stderr, "--sweep-rows: '%s' is not a row count in 1..512\n", argv[i] + 13);
        return 2;
      }
    } else if (std::strncmp(argv[i], "--tier=", 7) == 0) {
      const auto t = tier_from_name(argv[i] + 7);
      if (!t || !cpu_caps().tier_available(*t)) {
        std::fprintf(stderr, "--tier: '%s' is not a tier this CPU runs\n", argv[i] + 7);
        return 2;
      }
      sweep_tier = *t;
    } else if (std::strncmp(argv[i], "--gemm-from=", 12) == 0) {
      g_gemm_from = std::max(1, std::atoi(argv[i] + 12));
    } else if (std::strcmp(argv[i], "--shapes=small") == 0) {
      small = true;
    } else if (std::strncmp(argv[i], "--types=", 8) == 0) {
      types.clear();
      types_set = true;
      std::string list = argv[i] + 8;
      if (list == "all") list = "q8_0,q4_0,q4_1,q5_0,q5_1,iq4_nl,q4_K,q5_K,q6_K,iq4_xs";
      for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        const auto t = ggml_type_from_name(list.substr(at, comma - at));
        if (!t || !is_quantized_weight(*t)) {
          std::fprintf(stderr, "--types: '%s' is not a quantized weight type (%s)\n",
                       list.substr(at, comma - at).c_str(), quantized_weight_names());
          return 2;
        }
        types.push_back(*t);
        at = comma + 1;
      }
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  ThreadPool pool(threads);
  g_pool = &pool;
  if (sweep_reps > 0) {
    if (!types_set) types = {GgmlType::Q4_0};  // the sweep's default: the file tg is measured on
    return run_sweep(pool, sweep_tier.value_or(cpu_caps().best_tier()), types, sweep_reps,
                     sweep_rows);
  }

  // Ceilings: a 512 MiB buffer (far beyond any cache) of distinct pages (make_read_probe_buffer).
  AlignedBuffer big = make_read_probe_buffer(size_t{512} << 20);
  g_ceilings.read_bytes_per_s = measure_read_bandwidth(pool, big);
  const CpuCaps& caps = cpu_caps();
  std::printf("xtile kernel bench: %s, %d threads\n", caps.model.c_str(), threads);
  std::printf("ceiling: streaming read %.1f GB/s\n", g_ceilings.read_bytes_per_s / 1e9);
  for (Tier t : {Tier::avx2, Tier::avx512, Tier::amx}) {
    if (!caps.tier_available(t)) continue;
    const double peak = measure_int8_peak(pool, t);
    g_ceilings.peak_ops_per_s[int(t)] = peak;
    std::printf("ceiling: %s int8 dot-product peak %.1f GOP/s\n", std::string(tier_name(t)).c_str(),
                peak / 1e9);
  }
  if (caps.tier_available(Tier::amx)) {
    // TDPBSSD's rate when the A tile is not full: what the tile unit keeps for a few decoding
    // rows or a shorter K (docs/AMX.md, "Tile shape and throughput").
    std::printf("amx TDPBSSD by A tile (rows x K bytes), GOP/s of useful work:");
    for (auto [rows, k] :
         {std::pair{16, 64}, {16, 32}, {16, 16}, {8, 64}, {8, 32}, {8, 16}, {4, 64}})
      std::printf(" %dx%d %.0f", rows, k, measure_amx_tile_ops(pool, rows, k, 0.2) / 1e9);
    std::printf("\n");
  }
  big = AlignedBuffer();

  for (Tier tier : {Tier::avx2, Tier::avx512, Tier::amx}) {
    if (!caps.tier_available(tier)) continue;
    for (GgmlType type : types)
      for (const Shape& s : kShapes) {
        if (small && s.n > 8192) continue;
        for (int64_t m : kBatches) {
          const std::string name = std::string(ggml_type_name(type)) + "/" +
                                   std::string(tier_name(tier)) + "/" + std::to_string(s.n) +
                                   "x" + std::to_string(s.k) + "/M:" + std::to_string(m);
          benchmark::RegisterBenchmark(name.c_str(), run_matmul, tier, type, s, m)
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime();
        }
      }
  }
  CeilingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
