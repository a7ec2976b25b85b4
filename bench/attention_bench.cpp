// Attention alone (ops/attention.h), with less of the VM's noise than a model run.
//
// attention/...: prompt attention, one layer, against this CPU's f32 FMA peak: where `xtile
// bench -p 4096` spends most of its time. For each vector width the CPU runs (the 8-wide avx2
// object, the 16-wide avx512 one), each head layout and prompt length n: every one of n rows
// attends to positions 0..its own over an fp16 cache (the default cache type), as a prompt of n
// tokens does in each layer. Reports GFLOP/s (2 per multiply-add of q·k and of the weighted sum
// of V, over the causal pairs; softmax and conversions not counted) and its share of the
// measured f32 FMA peak of the width (probes.h: VFMADD231PS on ymm / zmm in registers).
//
// decode/...: generation, one row at depth d over a cache of each type of --decode-caches (K/V
// element types, default f16/f16: decode/w16/qwen3-0.6b/f16-f16/d:4096), as each layer of a
// decoding step at depth d: the cache's bytes (K and V) per second and their share of the read
// bandwidth (probes.h) measured right before and after. Layers' caches are visited in turn,
// 512 MiB in all by default, so K and V come from memory as in a model; --decode-layers=1 with
// a small depth keeps them in the caches instead (L2 / L3: the arithmetic's own rate).
//
// block/...: one thread, generation's step alone (the split-mode block of kernels/attention_isa.h
// over an fp16 cache read in place, the qwen3-0.6b layout: a tile of 2 query vectors, head 128)
// over 512 MiB of 256-position blocks laid out one after the other as a kv head's are, taking
// every block (stride:1, one sequential stream of K and one of V, as a thread claiming runs of
// blocks reads) or every other one (stride:2, as each of two threads claiming single blocks
// read): the blocks' bytes per second beside a one-thread read probe right before and after.
//
//   xtile_attention_bench [--threads=N] [--decode-depths=D,D...] [--decode-layers=N]
//                         [--decode-caches=K-V,K-V...]   (types f16, bf16, q8_0, f32)
//                         [google-benchmark flags]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/fp16.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "kernels/attention_isa.h"
#include "kernels/probes.h"
#include "model/kv_cache.h"
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
std::vector<int64_t> g_depths = {4096, 16384};  // generation: positions in the cache
int64_t g_decode_layers = 0;  // caches visited in turn (0, the default: enough for 512 MiB)
std::vector<std::pair<KvType, KvType>> g_caches = {{KvType::f16, KvType::f16}};  // K, V

ThreadPool* g_pool = nullptr;
std::map<int, double> g_peak;  // f32 FLOP/s by vector width
const AlignedBuffer* g_probe = nullptr;  // the read probe's buffer (probes.h)

// The last `rows` of positions 0..n−1 (a prompt: rows = n; a decoding step: 1) over a cache
// holding those n positions, K and V of the given types as xtile's KV cache stores them.
struct Problem {
  ops::AttentionShape shape;
  std::vector<float> q, out, scratch;
  std::vector<int64_t> pos;
  std::unique_ptr<KvCache> cache;  // one layer; huge pages where the kernel gives them
  ops::KvLayerView kv;
  Problem(const HeadLayout& l, int64_t n, int64_t rows, KvType type_k = KvType::f16,
          KvType type_v = KvType::f16) {
    shape = {l.n_head, l.n_head_kv, l.head_dim, 1.0f / std::sqrt(static_cast<float>(l.head_dim))};
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    q.resize(static_cast<size_t>(rows * l.n_head * l.head_dim));
    for (float& x : q) x = normal(rng);
    out.resize(q.size());
    // K and V: normal values, positions cycling through a table of 61 rows (a decode problem's
    // caches total 512 MiB; a normal draw per element took seconds).
    const int64_t row = l.n_head_kv * l.head_dim;
    std::vector<float> table(static_cast<size_t>(61 * 2 * row));
    for (float& x : table) x = normal(rng);
    cache = std::make_unique<KvCache>(1, n, l.n_head_kv, l.head_dim, type_k, type_v);
    for (int64_t p = 0; p < n; ++p) {
      const float* k = table.data() + p % 61 * 2 * row;
      cache->store(0, p, k, k + row);
    }
    pos.resize(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) pos[static_cast<size_t>(i)] = n - rows + i;
    kv = cache->view(0);
  }
};

void run_attention(benchmark::State& state, HeadLayout l, int64_t n, ops::AttentionPath path,
                   int width) {
  Problem p(l, n, n);
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

// Generation: one row at position n − 1 attends over a cache of n positions, as each layer of
// a decoding step at depth n does. The caches of `layers` layers (together well beyond the last
// level cache) are visited in turn, so each call reads its K and V from memory as a model does.
void run_decode(benchmark::State& state, HeadLayout l, int64_t n, ops::AttentionPath path,
                KvType type_k, KvType type_v) {
  const int64_t cache_bytes = static_cast<int64_t>(
      (kv_row_bytes(type_k, l.head_dim) + kv_row_bytes(type_v, l.head_dim)) * l.n_head_kv * n);
  const int64_t layers = g_decode_layers > 0
                             ? g_decode_layers
                             : std::max<int64_t>(2, (int64_t{512} << 20) / cache_bytes);
  std::vector<Problem> problems;
  problems.reserve(static_cast<size_t>(layers));
  for (int64_t i = 0; i < layers; ++i) problems.emplace_back(l, n, 1, type_k, type_v);
  const int64_t ld = l.n_head * l.head_dim;
  // The read probe right before and after (the development VM's bandwidth changes within
  // seconds): of_read is against the larger of the two.
  double read = measure_read_bandwidth(*g_pool, *g_probe, 3);
  size_t at = 0;
  for (auto _ : state) {
    Problem& p = problems[at];
    at = (at + 1) % problems.size();
    ops::attention(*g_pool, p.shape, p.q.data(), ld, p.pos.data(), 1, p.kv, p.out.data(), ld,
                   p.scratch, path);
    benchmark::DoNotOptimize(p.out.data());
  }
  read = std::max(read, measure_read_bandwidth(*g_pool, *g_probe, 3));
  const double bytes = static_cast<double>(cache_bytes) * static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["read_GB/s"] = read / 1e9;
  state.counters["of_read"] = benchmark::Counter(bytes / read, benchmark::Counter::kIsRate);
}

// One thread over blocks of an fp16 cache (the block/... cases above). Each block is what split
// mode reads for one item: 16 K chunks (positions × the head's 128 dimensions, 64 KiB) and 256
// V rows (64 KiB); consecutive blocks follow each other in K's and in V's buffer, as one kv
// head's do in the cache, and the next item's first K piece is requested as split mode does.
void run_block(benchmark::State& state, ops::AttentionPath path, int64_t stride) {
  constexpr int64_t hd = 128, kBlock = ops::kAttentionBlock;
  constexpr int64_t block_bytes = kBlock * hd * 2;  // of K, and of V
  const int64_t n_blocks = (int64_t{256} << 20) / block_bytes;
  const ops::attention_tiles::OneBlockFn one_block = path == ops::AttentionPath::lanes_isa_w16
                                                         ? avx512::attention_f16_one_block(hd)
                                                         : avx2::attention_f16_one_block(hd);
  AlignedBuffer k(static_cast<size_t>(n_blocks * block_bytes));
  AlignedBuffer v(static_cast<size_t>(n_blocks * block_bytes));
  {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<uint16_t> table(4099);  // a prime count: no period along a row or a chunk
    for (uint16_t& h : table) h = fp32_to_fp16(normal(rng));
    auto* kh = reinterpret_cast<uint16_t*>(k.data());
    auto* vh = reinterpret_cast<uint16_t*>(v.data());
    for (size_t i = 0; i < k.size() / 2; ++i) {
      kh[i] = table[i % table.size()];
      vh[i] = table[(i + 2048) % table.size()];
    }
  }
  std::vector<float> q(2 * hd);
  {
    std::mt19937 rng(8);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& x : q) x = normal(rng);
  }
  const ops::AttentionShape shape{2, 1, hd, 1.0f / std::sqrt(static_cast<float>(hd))};
  ops::attention_tiles::TileVectors tv;
  tv.n = 2;
  for (int i = 0; i < 2; ++i) {
    tv.q[i] = q.data() + i * hd;
    tv.row[i] = 0;
    tv.head[i] = i;
  }
  const int64_t pos[1] = {kBlock - 1};  // every position of block 0 (each call is block 0)
  AlignedBuffer work(sizeof(float) * (8 * kBlock + 16 * hd));
  std::vector<float> slot_area(2 * (2 + hd));
  float* slots[2] = {slot_area.data(), slot_area.data() + 2 + hd};
  ThreadPool one(1);
  double read = measure_read_bandwidth(one, *g_probe, 3);
  int64_t b = 0, blocks = 0;
  for (auto _ : state) {
    ops::attention_tiles::BlockSource src;
    src.k_raw = reinterpret_cast<const char*>(k.data()) + b * block_bytes;
    src.v_raw = reinterpret_cast<const char*>(v.data()) + b * block_bytes;
    src.k_chunk_bytes = ops::kKChunk * hd * 2;
    src.v_row_bytes = hd * 2;
    const int64_t next = b + stride < n_blocks ? b + stride : (b + stride) % stride;
    src.next_raw = reinterpret_cast<const char*>(k.data()) + next * block_bytes;
    src.next_bytes = ops::attention_tiles::kPiece / ops::kKChunk * src.k_chunk_bytes;
    one_block(shape, tv, pos, src, 0, slots, reinterpret_cast<float*>(work.data()));
    benchmark::DoNotOptimize(slot_area.data());
    b = next;
    ++blocks;
  }
  read = std::max(read, measure_read_bandwidth(one, *g_probe, 3));
  const double bytes = 2.0 * block_bytes * static_cast<double>(blocks);
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["read_1t_GB/s"] = read / 1e9;
  state.counters["of_read"] = benchmark::Counter(bytes / read, benchmark::Counter::kIsRate);
}

}  // namespace
}  // namespace xtile

int main(int argc, char** argv) {
  using namespace xtile;
  int threads = 2;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else if (std::strncmp(argv[i], "--decode-layers=", 16) == 0) {
      char* end = nullptr;
      g_decode_layers = std::strtoll(argv[i] + 16, &end, 10);
      if (end == argv[i] + 16 || *end != '\0' || g_decode_layers < 1) {
        std::fprintf(stderr, "--decode-layers: a positive layer count, got '%s'\n", argv[i] + 16);
        return 2;
      }
    } else if (std::strncmp(argv[i], "--decode-depths=", 16) == 0) {
      g_depths.clear();
      for (const char* c = argv[i] + 16; *c;) {
        char* end = nullptr;
        const long long d = std::strtoll(c, &end, 10);
        if (end == c || d < 1 || (*end != ',' && *end != '\0')) {
          std::fprintf(stderr, "--decode-depths: a comma list of positive depths, got '%s'\n",
                       argv[i] + 16);
          return 2;
        }
        g_depths.push_back(d);
        c = *end == ',' ? end + 1 : end;
      }
    } else if (std::strncmp(argv[i], "--decode-caches=", 16) == 0) {
      g_caches.clear();
      std::string list = argv[i] + 16;
      for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        const std::string item = list.substr(at, comma - at);
        const size_t dash = item.find('-');
        const auto tk = kv_type_from_name(item.substr(0, dash));
        const auto tv =
            dash == std::string::npos ? std::nullopt : kv_type_from_name(item.substr(dash + 1));
        if (!tk || !tv) {
          std::fprintf(stderr, "--decode-caches: a comma list of K-V type pairs (%s), got '%s'\n",
                       kKvTypeNames, item.c_str());
          return 2;
        }
        g_caches.emplace_back(*tk, *tv);
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
  const AlignedBuffer probe = make_read_probe_buffer(size_t{512} << 20);
  g_probe = &probe;
  for (const auto& p : paths) {
    if (!ops::attention_path_available(p.path)) continue;
    for (const HeadLayout& l : kLayouts)
      for (const auto& [tk, tv] : g_caches)
        for (int64_t n : g_depths) {
          const std::string name = "decode/w" + std::to_string(p.width) + "/" + l.model + "/" +
                                   std::string(kv_type_name(tk)) + "-" +
                                   std::string(kv_type_name(tv)) + "/d:" + std::to_string(n);
          benchmark::RegisterBenchmark(name.c_str(), run_decode, l, n, p.path, tk, tv)
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime();
        }
  }
  for (const auto& p : paths) {
    if (!ops::attention_path_available(p.path)) continue;
    for (int64_t stride : {1, 2}) {
      const std::string name = "block/w" + std::to_string(p.width) +
                               "/qwen3-0.6b/f16-f16/stride:" + std::to_string(stride);
      benchmark::RegisterBenchmark(name.c_str(), run_block, p.path, stride)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
