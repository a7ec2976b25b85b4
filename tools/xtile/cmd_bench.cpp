// `xtile bench`: llama-bench's habits (-m -p -n -pg -r -t -b -o), tiers compared in one run
// (--kernels avx2,avx512), optional machine ceilings (--roofline). See src/model/benchmark.h.
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/aligned_buffer.h"
#include "base/error.h"
#include "commands.h"
#include "common.h"
#include "kernels/probes.h"
#include "llama_compat.h"
#include "model/benchmark.h"
#include "placement_flags.h"

namespace xtile::cli {

namespace {
namespace cmd_bench {  // unity batches: CMakeLists.txt

struct BenchArgs {
  std::vector<std::string> models;
  std::string prompts = "512";
  std::string gens = "128";
  std::vector<std::string> pg;
  std::string depths = "0";
  std::string parallel = "1";
  std::string cache_type_k = "f16", cache_type_v = "f16";
  int repetitions = 5;
  std::string threads;
  int64_t batch = 512;
  int64_t ubatch = 0;  // -ub: the forward batch is min(-b, -ub)
  std::string kernels = "auto";
  std::string output = "md";
  bool roofline = false;
  PlacementFlags placement;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

int64_t parse_count(const std::string& s, const char* flag) {
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used == s.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  fail(flag, ": '", s, "' is not a non-negative whole number");
}

// The most sequences -np takes: a server's slots (more rows per step leave the GEMV for the GEMM).
constexpr int64_t kMaxParallel = 256;

std::vector<BenchTest> tests_of(const BenchArgs& a) {
  std::vector<BenchTest> tests;
  for (const std::string& p : split(a.prompts, ','))
    if (int64_t n = parse_count(p, "-p")) tests.push_back({n, 0});
  std::vector<int> seqs;
  for (const std::string& np : split(a.parallel, ',')) {
    const int64_t n = parse_count(np, "-np");
    if (n < 1 || n > kMaxParallel) fail("-np: '", np, "' sequences: give 1 to ", kMaxParallel);
    seqs.push_back(static_cast<int>(n));
  }
  if (seqs.empty()) fail("-np: no sequence count given");
  for (const std::string& g : split(a.gens, ','))
    if (int64_t n = parse_count(g, "-n"))
      for (int np : seqs) tests.push_back({0, n, 0, np});
  for (const std::string& pg : a.pg) {
    const auto parts = split(pg, ',');
    if (parts.size() != 2) fail("-pg: '", pg, "' is not PROMPT,GEN (e.g. 512,128)");
    tests.push_back({parse_count(parts[0], "-pg"), parse_count(parts[1], "-pg")});
  }
  if (tests.empty()) fail("bench: no test to run (-p 0 and -n 0 and no -pg)");
  // Every test at every depth, as llama-bench's -d.
  std::vector<BenchTest> out;
  for (const std::string& d : split(a.depths, ','))
    for (BenchTest t : tests) {
      t.n_depth = parse_count(d, "-d");
      out.push_back(t);
    }
  if (out.empty()) fail("-d: no depth given");
  return out;
}

// "qwen3 0.6B Q4_0", llama-bench's model column: arch, size class, dominant weight type.
std::string model_label(const WeightStore& w, uint64_t* params) {
  uint64_t n = 0;
  std::map<GgmlType, uint64_t> by_type;
  for (const gguf::TensorInfo& t : w.file().tensors()) {
    n += t.elements();
    by_type[t.type] += t.elements();
  }
  *params = n;
  GgmlType dominant = GgmlType::F32;
  uint64_t most = 0;
  for (auto [type, count] : by_type)
    if (count > most) most = count, dominant = type;
  std::string type_name(ggml_type_name(dominant));
  for (char& c : type_name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  char size[32];
  const double b = static_cast<double>(n) / 1e9;
  std::snprintf(size, sizeof size, b >= 1.0 ? "%.1fB" : (b >= 0.01 ? "%.2fB" : "%.1fM"),
                b >= 0.01 ? b : static_cast<double>(n) / 1e6);
  return w.config().arch_name + " " + size + " " + type_name;
}

struct Row {
  std::string model_file, model, tier, test, kv_type;
  uint64_t file_size = 0, params = 0;
  int threads = 0;
  int64_t batch = 0;
  BenchResult result;
  double roofline = -1;  // fraction of the ceiling (tg: bandwidth, pp: int8 peak), -1 unknown
  std::string roofline_of;
  double bandwidth_before = 0, bandwidth_after = 0;  // tg: the read probe around the test, B/s
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void print_markdown(const std::vector<Row>& rows, bool roofline) {
  std::cout << "| model | size | params | tier | threads | test | t/s |" << (roofline ? " roofline |" : "")
            << "\n|---|---:|---:|---|---:|---:|---:|" << (roofline ? "---:|" : "") << "\n";
  for (const Row& r : rows) {
    std::cout << "| " << r.model << " | " << format_bytes(r.file_size) << " | "
              << format_count(r.params) << " | " << r.tier << " | " << r.threads << " | " << r.test
              << " | " << fmt("%.2f", r.result.mean_tps) << " ± " << fmt("%.2f", r.result.sd_tps)
              << " |";
    if (roofline)
      std::cout << " " << (r.roofline < 0 ? std::string("-")
                                          : fmt("%.0f%%", 100 * r.roofline) + " of " + r.roofline_of)
                << " |";
    std::cout << "\n";
  }
}

void print_csv(const std::vector<Row>& rows) {
  std::cout << "model_filename,model_type,model_size,model_n_params,tier,n_threads,n_batch,test,"
               "n_prompt,n_gen,n_depth,n_parallel,avg_ts,stddev_ts,roofline\n";
  for (const Row& r : rows)
    std::cout << '"' << r.model_file << "\",\"" << r.model << "\"," << r.file_size << ','
              << r.params << ',' << r.tier << ',' << r.threads << ',' << r.batch << ',' << r.test
              << ',' << r.result.test.n_prompt << ',' << r.result.test.n_gen << ','
              << r.result.test.n_depth << ',' << r.result.test.n_seq << ','
              << fmt("%.6f", r.result.mean_tps) << ',' << fmt("%.6f", r.result.sd_tps) << ','
              << (r.roofline < 0 ? std::string() : fmt("%.4f", r.roofline)) << "\n";
}

void print_json(const std::vector<Row>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const Row& r : rows) {
    nlohmann::json samples = nlohmann::json::array();
    for (double s : r.result.seconds) samples.push_back(static_cast<int64_t>(s * 1e9));
    nlohmann::json j = {{"model_filename", r.model_file},
                        {"model_type", r.model},
                        {"model_size", r.file_size},
                        {"model_n_params", r.params},
                        {"tier", r.tier},
                        {"n_threads", r.threads},
                        {"n_batch", r.batch},
                        {"test", r.test},
                        {"n_prompt", r.result.test.n_prompt},
                        {"n_gen", r.result.test.n_gen},
                        {"n_depth", r.result.test.n_depth},
                        {"n_parallel", r.result.test.n_seq},
                        {"type_kv", r.kv_type},
                        {"samples_ns", samples},
                        {"avg_ts", r.result.mean_tps},
                        {"stddev_ts", r.result.sd_tps}};
    if (r.roofline >= 0) {
      j["roofline"] = r.roofline;
      j["roofline_of"] = r.roofline_of;
    }
    if (r.bandwidth_before > 0) {
      j["read_bandwidth_before"] = r.bandwidth_before;
      j["read_bandwidth_after"] = r.bandwidth_after;
    }
    out.push_back(j);
  }
  std::cout << out.dump(2) << "\n";
}

int run_bench(const BenchArgs& a) {
  if (a.output != "md" && a.output != "json" && a.output != "csv")
    fail("-o: unknown output format '", a.output, "' (md, json, csv)");
  if (a.batch < 1) fail("-b: batch size must be at least 1");
  const std::vector<BenchTest> tests = tests_of(a);
  const auto kv_type = kv_type_from_name(a.cache_type_k);
  if (!kv_type) fail("-ctk: unknown cache type '", a.cache_type_k, "' (f16, bf16, f32, q8_0)");
  const auto kv_type_v = kv_type_from_name(a.cache_type_v);
  if (!kv_type_v) fail("-ctv: unknown cache type '", a.cache_type_v, "' (f16, bf16, f32, q8_0)");
  std::vector<int> thread_counts;
  for (const std::string& t : split(a.threads.empty() ? std::to_string(default_threads()) : a.threads, ','))
    thread_counts.push_back(static_cast<int>(parse_count(t, "-t")));
  for (int t : thread_counts)
    if (t < 1) fail("-t: thread count must be at least 1");
  std::vector<Tier> tiers;
  for (const std::string& k : split(a.kernels, ',')) tiers.push_back(resolve_kernels(k));
  if (tiers.empty()) fail("--kernels: no tier named");
  std::vector<std::string> models;
  for (const std::string& m : a.models)
    for (const std::string& part : split(m, ',')) models.push_back(part);
  for (const std::string& m : models) require_file(m, "model file");

  // Ceilings, measured once per (tier, threads) by this binary.
  std::map<std::pair<int, int>, double> peak;
  // The read bandwidth is probed right before and right after each generation test, not once:
  // a VM's moves within seconds (the development VM's probe reads ~45-50 or ~80-85 GB/s for two
  // threads, in turns, docs/PERF.md), and a test is compared with the larger of its two probes,
  // so that its fraction is never flattered by a slow moment of the probe.
  auto probe_bandwidth = [](ThreadPool& pool) {
    const AlignedBuffer big = make_read_probe_buffer(size_t{512} << 20);
    return measure_read_bandwidth(pool, big);
  };
  std::vector<Row> rows;
  ProgressBar bar("bench");
  for (const std::string& path : models)
    for (Tier tier : tiers)
      for (int threads : thread_counts) {
        ThreadPool pool(threads, apply_placement(a.placement, threads));
        LoadOptions lo;
        lo.tier = tier;
        const auto weights = WeightStore::load(path, pool, lo);
        if (a.roofline && !peak.count({int(tier), threads}))
          peak[{int(tier), threads}] = measure_int8_peak(pool, tier);
        Row base;
        base.model_file = path;
        base.model = model_label(*weights, &base.params);
        base.file_size = weights->file().file_size();
        base.tier = std::string(tier_name(tier));
        base.threads = threads;
        base.batch = forward_batch(a.batch, a.ubatch);
        base.kv_type = std::string(kv_type_name(*kv_type)) + "/" + std::string(kv_type_name(*kv_type_v));
        for (const BenchTest& test : tests) {
          Row r = base;
          r.test = test.name();
          const bool probe = a.roofline && test.n_prompt == 0;
          if (probe) r.bandwidth_before = probe_bandwidth(pool);
          r.result = run_bench_test(
              *weights, pool, test, a.repetitions, base.batch,
              [&](const std::string& name, int rep, int reps) {
                bar.update(static_cast<uint64_t>(rep + 1), reps,
                           base.model + " " + base.tier + " t" + std::to_string(threads) + " " +
                               name + (rep < 0 ? " warm-up" : ""));
              },
              *kv_type, *kv_type_v);
          if (probe) r.bandwidth_after = probe_bandwidth(pool);
          if (a.roofline) {
            if (test.n_prompt == 0) {
              // Weights (once per step: shared by its n_seq rows) and, at depth, the KV cache
              // each token reads.
              const double bytes =
                  static_cast<double>(weight_bytes_per_token(*weights)) / test.n_seq +
                  static_cast<double>(
                      kv_bytes_per_token(*weights, *kv_type, *kv_type_v, test.n_depth, test.n_gen));
              const double bandwidth = std::max(r.bandwidth_before, r.bandwidth_after);
              r.roofline = bytes * r.result.mean_tps / bandwidth;
              r.roofline_of = fmt("%.1f GB/s", bandwidth / 1e9);
              // A batch of sequences can be bound by arithmetic instead (every row pays every
              // layer and the output head): the tighter of the two ceilings is the one shown.
              const double int8_peak = peak[{int(tier), threads}];
              if (test.n_seq > 1 && int8_peak > 0) {
                const double compute = token_matmul_ops(*weights) * r.result.mean_tps / int8_peak;
                if (compute > r.roofline) {
                  r.roofline = compute;
                  r.roofline_of = fmt("%.0f GOP/s", int8_peak / 1e9);
                }
              }
            } else if (test.n_gen == 0 && peak[{int(tier), threads}] > 0) {
              // t/s × seconds per test = n_prompt, so ops per second = ops of the prompt / s.
              r.roofline = prompt_matmul_ops(*weights, test.n_prompt) * r.result.mean_tps /
                           static_cast<double>(test.n_prompt) / peak[{int(tier), threads}];
              r.roofline_of = fmt("%.0f GOP/s", peak[{int(tier), threads}] / 1e9);
            }
          }
          rows.push_back(r);
        }
      }
  bar.finish();
  if (a.output == "md") print_markdown(rows, a.roofline);
  else if (a.output == "csv") print_csv(rows);
  else print_json(rows);
  return 0;
}

}  // namespace cmd_bench
}  // namespace

Command register_bench(CLI::App& root) {
  using namespace cmd_bench;  // this file's helpers
  auto a = std::make_shared<BenchArgs>();
  CLI::App* app = root.add_subcommand(
      "bench", "Prompt (pp) and generation (tg) throughput, llama-bench style");
  app->add_option("-m,--model", a->models, "model GGUF (repeat or comma-separate for several)")
      ->required();
  app->add_option("-p,--n-prompt", a->prompts, "prompt sizes, comma list (0: none)")
      ->capture_default_str();
  app->add_option("-n,--n-gen", a->gens, "generation lengths, comma list (0: none)")
      ->capture_default_str();
  app->add_option("--pg", a->pg,
                  "PROMPT,GEN: prompt then generation, timed together (repeatable)");
  app->add_option("-d,--n-depth", a->depths,
                  "tokens already in the cache before each test, comma list (llama-bench's -d)")
      ->capture_default_str();
  app->add_option("--parallel", a->parallel,
                  "sequences generating together in each tg test, comma list (-np; a server's "
                  "decoding slots, as llama-batched-bench's -npl): 'tg128 x8'")
      ->capture_default_str();
  app->add_option("--cache-type-k", a->cache_type_k, "KV cache type (-ctk): f16, bf16, f32 or q8_0")
      ->capture_default_str();
  app->add_option("--cache-type-v", a->cache_type_v, "V cache type (-ctv): f16, bf16, f32 or q8_0")
      ->capture_default_str();
  app->add_option("-r,--repetitions", a->repetitions, "timed repetitions after one warm-up")
      ->capture_default_str()
      ->check(at_least_one());
  app->add_option("-t,--threads", a->threads, "thread counts, comma list (default: physical cores)");
  add_placement_flags(app, &a->placement);
  app->add_option("-b,--batch-size", a->batch, "prompt batch size")->capture_default_str();
  add_llama_compat_flags(app, /*lists=*/true, &a->ubatch);
  app->add_option("--kernels", a->kernels, "tiers to compare, comma list (auto, ref, avx2, ...)")
      ->capture_default_str();
  app->add_option("-o,--output", a->output, "md, json or csv")->capture_default_str();
  app->add_flag("--roofline", a->roofline,
                "measure the int8 peak, and the read bandwidth right before and after each "
                "generation test; print the fraction each test reaches (of the larger probe)");
  return {app, [a]() { return run_bench(*a); }};
}

}  // namespace xtile::cli
