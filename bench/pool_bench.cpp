// Thread pool hand-off cost (issue 15, docs/PERF.md): ThreadPool::run round trips with an empty
// job (the pure hand-off: start every worker, wait for every worker) and with ~2 µs of work per
// thread, at 1 to 64 threads, with the automatic hand-off and with the tree and the flat one
// forced; and the hand-off cost per generated token of qwen3-0.6b: its pool
// jobs per token (counted on synthetic 1- and 2-layer cuts, extrapolated to its 28 layers) times
// the time per empty job. With more threads than cores the pool is oversubscribed: the figure
// to watch there is that it degrades gracefully rather than collapsing.
//
//   xtile_pool_bench [--max-threads=N] [google-benchmark flags]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "model/session.h"
#include "model/synth.h"
#include "model/weights.h"

namespace xtile {
namespace {

double g_jobs_per_token = 0;  // qwen3-0.6b, 28 layers

// range(0): threads; range(1): the HandOff (automatic, tree, flat).
ThreadPool& pool_of(const benchmark::State& state) {
  static std::map<std::pair<int64_t, int64_t>, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[{state.range(0), state.range(1)}];
  if (!p)
    p = std::make_unique<ThreadPool>(static_cast<int>(state.range(0)),
                                     PoolOptions{{}, static_cast<HandOff>(state.range(1))});
  return *p;
}

// µs per token of the hand-off alone: the benchmark's time per job × jobs per token.
void report_per_token(benchmark::State& state) {
  state.counters["per_token"] =
      benchmark::Counter(static_cast<double>(state.iterations()) / g_jobs_per_token,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_EmptyJob(benchmark::State& state) {
  ThreadPool& pool = pool_of(state);
  for (auto _ : state) pool.run([](int, int) {});
  report_per_token(state);
}

// About 2 µs of register-only work per thread per job: the hand-off with threads that finish
// at slightly different times, as ops of a forward pass do.
void BM_SmallJob(benchmark::State& state) {
  ThreadPool& pool = pool_of(state);
  for (auto _ : state)
    pool.run([](int t, int) {
      uint64_t x = static_cast<uint64_t>(t) + 1;
      for (int i = 0; i < 2000; ++i) x = x * 6364136223846793005ull + 1;
      benchmark::DoNotOptimize(x);
    });
}

// Pool jobs of one generated token (M = 1) of a synthetic qwen3-0.6b cut to `layers` layers.
uint64_t jobs_per_token(int layers) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("xtile-pool-bench-l" + std::to_string(layers) + ".gguf"))
                               .string();
  synth::Options o;
  o.preset = "qwen3-0.6b";
  o.type = GgmlType::Q4_0;
  o.layers = static_cast<uint32_t>(layers);
  o.vocab_size = 2048;
  o.threads = 2;
  synth::write_model(o, path);
  ThreadPool pool(2);
  LoadOptions lo;
  lo.tier = cpu_caps().best_tier();
  auto w = WeightStore::load(path, pool, lo);
  Session s(*w, pool, SessionOptions{64, 512, KvType::f16});
  std::vector<float> logits;
  s.eval(std::vector<int32_t>{1, 2, 3}, false, &logits);
  const uint64_t before = pool.jobs();
  s.eval(std::vector<int32_t>{4}, false, &logits);
  const uint64_t jobs = pool.jobs() - before;
  std::filesystem::remove(path);
  return jobs;
}

}  // namespace
}  // namespace xtile

int main(int argc, char** argv) {
  using namespace xtile;
  int max_threads = 16;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--max-threads=", 14) == 0)
      max_threads = std::atoi(argv[i] + 14);
    else
      rest.push_back(argv[i]);
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());

  const uint64_t l1 = jobs_per_token(1), l2 = jobs_per_token(2);
  g_jobs_per_token = static_cast<double>(l1) + 27.0 * static_cast<double>(l2 - l1);
  std::printf("xtile pool bench: %s, %d logical CPUs\n", cpu_caps().model.c_str(),
              cpu_caps().logical_cpus);
  std::printf("qwen3-0.6b: %llu jobs per token at 1 layer, %llu at 2: %.0f at 28 layers\n",
              static_cast<unsigned long long>(l1), static_cast<unsigned long long>(l2),
              g_jobs_per_token);
  // The automatic hand-off at every count; both forced ones where they differ from it here.
  const char* modes[] = {"auto", "tree", "flat"};
  for (int t = 1; t <= max_threads; t *= 2)
    for (int mode = 0; mode < 3; ++mode) {
      if (mode != 0 && t < 4) continue;
      const std::string suffix = "/threads:" + std::to_string(t) + "/" + modes[mode];
      benchmark::RegisterBenchmark(("EmptyJob" + suffix).c_str(), BM_EmptyJob)
          ->Args({t, mode})
          ->UseRealTime();
      benchmark::RegisterBenchmark(("SmallJob" + suffix).c_str(), BM_SmallJob)
          ->Args({t, mode})
          ->UseRealTime();
    }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
