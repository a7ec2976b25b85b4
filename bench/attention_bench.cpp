// Prompt attention alone (ops/attention.h), one layer, against this CPU's f32 FMA peak: where
// `xtile bench -p 4096` spends most of its time, measured without the matmuls and with less of
// the VM's noise. For each vector width the CPU runs (the 8-wide avx2 object, the 16-wide avx512
// one), each head layout and prompt length n: every one of n rows attends to positions 0..its
// own over an fp16 cache (the default cache type), as a prompt of n tokens does in each layer.
//
//   xtile_attention_bench [--threads=N] [google-benchmark flags]
//
// Reports GFLOP/s (2 per multiply-add of q·k and of the weighted sum of V, over the causal
// pairs; softmax and conversions not counted) and its share of the measured f32 FMA peak of the
// width (probes.h: VFMADD231PS on ymm / zmm in registers).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "kernels/probes.h"
#include "ops/attention.h"

namespace xtile {
namespace {

struct HeadLayout {
  int64_t n_head, n_head_kv, head_dim;
  const char* model;
};
const HeadLayout kLayouts[] = {
    {16, 8, 128, "qwen3-0.6b"},     // 2 query heads per kv head
    {32, 4, 128, "qwen3-30b-a3b"},  // 8 query heads per kv head
};
const int64_t kLengths[] = {512, 2048, 4096};

ThreadPool* g_pool = nullptr;
std::map<int, double> g_peak;  // f32 FLOP/s by vector width

// A prompt of n rows at positions 0..n−1 over an fp16 cache holding those n positions.
struct Problem {
  ops::AttentionShape shape;
  std::vector<float> q, out, scratch;
  std::vector<int64_t> pos;
  std::vector<uint16_t> k, v;
  ops::KvLayerView kv;
  Problem(const HeadLayout& l, int64_t n) {
    shape = {l.n_head, l.n_head_kv, l.head_dim, 1.0f / std::sqrt(static_cast<float>(l.head_dim))};
    const int64_t capacity = (n + ops::kKChunk - 1) / ops::kKChunk * ops::kKChunk;
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    q.resize(static_cast<size_t>(n * l.n_head * l.head_dim));
    for (float& x : q) x = normal(rng);
    out.resize(q.size());
    k.resize(static_cast<size_t>(l.n_head_kv * capacity * l.head_dim));
    v.resize(k.size());
    for (uint16_t& x : k) x = fp32_to_fp16(normal(rng));
    for (uint16_t& x : v) x = fp32_to_fp16(normal(rng));
    pos.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pos[static_cast<size_t>(i)] = i;
    kv = {k.data(),    v.data(),   ops::KvElem::f16, ops::KvElem::f16,
          l.n_head_kv, l.head_dim, capacity};
  }
};

void run_attention(benchmark::State& state, HeadLayout l, int64_t n, ops::AttentionPath path,
                   int width) {
  Problem p(l, n);
  const int64_t ld = l.n_head * l.head_dim;
  for (auto _ : state) {
    ops::attention(*g_pool, p.shape, p.q.data(), ld, p.pos.data(), n, p.kv, p.out.data(), ld,
                   p.scratch, path);
    benchmark::DoNotOptimize(p.out.data());
  }
  // Causal pairs n(n+1)/2 per head, hd multiply-adds each for q·k and for the weighted sum.
  const double flops = 4.0 * static_cast<double>(l.n_head * l.head_dim) * n * (n + 1) / 2;
  const double iterations = static_cast<double>(state.iterations());
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * iterations / 1e9, benchmark::Counter::kIsRate);
  if (g_peak[width] > 0)
    state.counters["of_peak"] =
        benchmark::Counter(flops * iterations / g_peak[width], benchmark::Counter::kIsRate);
}

}  // namespace
}  // namespace xtile

int main(int argc, char** argv) {
  using namespace xtile;
  int threads = 2;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0)
      threads = std::atoi(argv[i] + 10);
    else
      rest.push_back(argv[i]);
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  ThreadPool pool(threads);
  g_pool = &pool;
  std::printf("xtile attention bench: %s, %d threads\n", cpu_caps().model.c_str(), threads);
  const struct {
    ops::AttentionPath path;
    int width;
    Tier tier;
  } paths[] = {{ops::AttentionPath::lanes_isa_w8, 8, Tier::avx2},
               {ops::AttentionPath::lanes_isa_w16, 16, Tier::avx512}};
  for (const auto& p : paths) {
    if (!ops::attention_path_available(p.path)) continue;
    g_peak[p.width] = measure_f32_fma_peak(pool, p.tier);
    std::printf("ceiling: %d-wide f32 FMA peak %.1f GFLOP/s\n", p.width, g_peak[p.width] / 1e9);
    for (const HeadLayout& l : kLayouts)
      for (int64_t n : kLengths) {
        const std::string name =
            "attention/w" + std::to_string(p.width) + "/" + l.model + "/n:" + std::to_string(n);
        benchmark::RegisterBenchmark(name.c_str(), run_attention, l, n, p.path, p.width)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
