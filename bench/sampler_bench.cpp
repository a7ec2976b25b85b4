// One sampled token on a Qwen-sized vocabulary (151936 logits, normal with sigma 3), with the
// default chain (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05): the top-k shortcut
// (sampling::fill_top_k) against the whole chain, which a top-n-sigma wide enough to keep every
// candidate forces (docs/PERF.md). A server samples each decoding sequence's row between steps.
//
//   xtile_kernel_bench --benchmark_filter=Sample
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "model/sampler.h"

namespace xtile {
namespace {

void sample_token(benchmark::State& state, bool whole_chain) {
  std::mt19937 rng(1);
  std::normal_distribution<float> logit(0.0f, 3.0f);
  std::vector<float> logits(151936);
  for (float& x : logits) x = logit(rng);
  SamplerParams p;
  p.seed = 1;
  if (whole_chain) p.top_n_sigma = 1e30f;
  Sampler s(p);
  for (auto _ : state) benchmark::DoNotOptimize(s.sample(logits));
}

void BM_SampleTopKShortcut(benchmark::State& state) {
  sample_token(state, false);
}
void BM_SampleWholeChain(benchmark::State& state) {
  sample_token(state, true);
}
BENCHMARK(BM_SampleTopKShortcut)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleWholeChain)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace xtile
