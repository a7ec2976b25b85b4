#include "perplexity_report.h"

#include <cstdarg>

namespace xtile::cli {

namespace {
namespace perplexity_report {  // unity batches: CMakeLists.txt

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

std::string format(const char* fmt, ...) {
  char buf[256];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  return buf;
}

// llama-perplexity's percentile rows, top to bottom: label and fraction.
// (the median is printed between the 90 % and 10 % rows, or the 75 % and 25 % ones).
struct PercentileRow {
  const char* label;  // text output
  const char* key;    // JSON
  float fraction;
};
constexpr PercentileRow kKldRows[] = {{"99.9%", "p99.9", 0.999f}, {"99.0%", "p99", 0.990f},
                                      {"95.0%", "p95", 0.950f},   {"90.0%", "p90", 0.900f},
                                      {"10.0%", "p10", 0.100f},   {" 5.0%", "p5", 0.050f},
                                      {" 1.0%", "p1", 0.010f},    {" 0.1%", "p0.1", 0.001f}};
constexpr PercentileRow kPDiffRows[] = {{"99.9%", "p99.9", 0.999f}, {"99.0%", "p99", 0.990f},
                                        {"95.0%", "p95", 0.950f},   {"90.0%", "p90", 0.900f},
                                        {"75.0%", "p75", 0.750f},   {"25.0%", "p25", 0.250f},
                                        {"10.0%", "p10", 0.100f},   {" 5.0%", "p5", 0.050f},
                                        {" 1.0%", "p1", 0.010f},    {" 0.1%", "p0.1", 0.001f}};

nlohmann::json estimate(const Estimate& e) {
  return {{"value", e.value}, {"error", e.error}};
}

}  // namespace perplexity_report
}  // namespace

std::string chunk_ppl_text(int64_t chunk, double ppl) {
  using namespace perplexity_report;  // this file's helpers
  return format("[%lld]%.4lf,", static_cast<long long>(chunk), ppl);
}

std::string final_estimate_text(const PerplexityState& s) {
  using namespace perplexity_report;  // this file's helpers
  return format("Final estimate: PPL = %.4lf +/- %.5lf", s.ppl(), s.ppl_error());
}

std::string kld_table_header() {
  return "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence    "
         "          Δp RMS            Same top p";
}

std::string kld_table_row(const KldState& s) {
  using namespace perplexity_report;  // this file's helpers
  const KldStats& k = s.stats;
  const Estimate ppl = k.ppl(), ratio = k.log_ppl_ratio(), kld = k.kld(), rms = k.p_diff_rms(),
                 top = k.same_top();
  std::string row = format("%4lld", static_cast<long long>(s.chunk));
  row += format("    %9.4lf ± %9.4lf", ppl.value, ppl.error);
  row += format("    %10.5lf ± %10.5lf", ratio.value, ratio.error);
  row += format("    %10.5lf ± %10.5lf", kld.value, kld.error);
  row += format("    %6.3lf ± %6.3lf %%", 100.0 * rms.value, 100.0 * rms.error);
  row += format("    %6.3lf ± %6.3lf %%", 100.0 * top.value, 100.0 * top.error);
  return row;
}

std::string kld_summary_text(const KldStats& s) {
  using namespace perplexity_report;  // this file's helpers
  if (s.count() == 0) return "no positions scored\n";
  std::string out = "====== Perplexity statistics ======\n";
  auto pair_line = [&out](const char* label, const Estimate& e) {
    out += format("%s: %10.6lf ± %10.6lf\n", label, e.value, e.error);
  };
  pair_line("Mean PPL(Q)                   ", s.ppl());
  pair_line("Mean PPL(base)                ", s.ppl_base());
  out += format("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2lf%%\n", 100.0 * s.log_ppl_correlation());
  pair_line("Mean ln(PPL(Q)/PPL(base))     ", s.log_ppl_ratio());
  pair_line("Mean PPL(Q)/PPL(base)         ", s.ppl_ratio());
  pair_line("Mean PPL(Q)-PPL(base)         ", s.ppl_diff());

  const std::vector<float> kld = s.sorted_kld();
  out += "\n====== KL divergence statistics ======\n";
  out += format("Mean    KLD: %10.6lf ± %10.6lf\n", s.kld().value, s.kld().error);
  out += format("Maximum KLD: %10.6f\n", static_cast<double>(kld.back()));
  for (const PercentileRow& r : kKldRows) {
    if (r.fraction == 0.100f)
      out += format("Median  KLD: %10.6f\n", static_cast<double>(median(kld)));
    out += format("%s   KLD: %10.6f\n", r.label, static_cast<double>(percentile(kld, r.fraction)));
  }
  out += format("Minimum KLD: %10.6f\n", static_cast<double>(kld.front()));

  const std::vector<float> dp = s.sorted_p_diff();
  out += "\n====== Token probability statistics ======\n";
  out += format("Mean    Δp: %6.3lf ± %5.3lf %%\n", 100.0 * s.p_diff().value,
                100.0 * s.p_diff().error);
  out += format("Maximum Δp: %6.3lf%%\n", 100.0 * static_cast<double>(dp.back()));
  for (const PercentileRow& r : kPDiffRows) {
    if (r.fraction == 0.250f)
      out += format("Median  Δp: %6.3lf%%\n", 100.0 * static_cast<double>(median(dp)));
    out += format("%s   Δp: %6.3lf%%\n", r.label,
                  100.0 * static_cast<double>(percentile(dp, r.fraction)));
  }
  out += format("Minimum Δp: %6.3lf%%\n", 100.0 * static_cast<double>(dp.front()));
  out += format("RMS Δp    : %6.3lf ± %5.3lf %%\n", 100.0 * s.p_diff_rms().value,
                100.0 * s.p_diff_rms().error);
  out += format("Same top p: %6.3lf ± %5.3lf %%\n", 100.0 * s.same_top().value,
                100.0 * s.same_top().error);
  return out;
}

nlohmann::json perplexity_json(const PerplexityState& s, const ChunkPlan& plan) {
  return {{"n_ctx", plan.n_ctx},      {"n_chunk", plan.n_chunk}, {"scored_tokens", s.count},
          {"chunk_ppl", s.chunk_ppl}, {"ppl", s.ppl()},          {"ppl_error", s.ppl_error()}};
}

nlohmann::json kld_json(const KldState& s, const ChunkPlan& plan) {
  using namespace perplexity_report;  // this file's helpers
  const KldStats& k = s.stats;
  nlohmann::json j = {{"n_ctx", plan.n_ctx}, {"n_chunk", s.chunk}, {"scored_tokens", k.count()}};
  if (k.count() == 0) return j;
  j["ppl"] = estimate(k.ppl());
  j["ppl_base"] = estimate(k.ppl_base());
  j["ln_ppl_correlation"] = k.log_ppl_correlation();
  j["ln_ppl_ratio"] = estimate(k.log_ppl_ratio());
  j["ppl_ratio"] = estimate(k.ppl_ratio());
  j["ppl_diff"] = estimate(k.ppl_diff());
  const std::vector<float> kld = k.sorted_kld();
  const std::vector<float> dp = k.sorted_p_diff();
  nlohmann::json kj = {{"mean", estimate(k.kld())},
                       {"max", kld.back()},
                       {"median", median(kld)},
                       {"min", kld.front()}};
  for (const PercentileRow& r : kKldRows) kj[r.key] = percentile(kld, r.fraction);
  nlohmann::json pj = {{"mean", estimate(k.p_diff())},
                       {"max", dp.back()},
                       {"median", median(dp)},
                       {"min", dp.front()},
                       {"rms", estimate(k.p_diff_rms())}};
  for (const PercentileRow& r : kPDiffRows) pj[r.key] = percentile(dp, r.fraction);
  j["kld"] = kj;
  j["delta_p"] = pj;
  j["same_top_p"] = estimate(k.same_top());
  return j;
}

}  // namespace xtile::cli
