// KL-divergence of a model's next-token distributions against a base model's, from the
// base's encoded rows (model/log_probs.h), with the statistics llama-perplexity prints.
//
// One deliberate difference from llama-perplexity: the model's own log-probabilities go
// through the same 16-bit encoding as the base's before they are compared (llama-perplexity
// compares its float log-probabilities with the base's decoded ones). The encoding's rounding
// (about scale/2 ≈ 1.2e-4 in log-probability) then cancels where the two rows agree, and a
// model compared with its own base gives exactly 0: KLD 0, Δp 0, the same top token at every
// position. Only where the model's code is the floor (0) and the base's is not does the
// model's float log-probability stand in, so a token the model pushed far below the base is not
// credited with the floor's value. The terms are llama-perplexity's: Σ over tokens whose base
// log-probability is above −16 of p_base · (log p_base − log p).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/log_probs.h"

namespace xtile {

struct RowKld {
  double kld = 0.0;       // KL(base || model) at this position
  double nll = 0.0;       // −log p(next token), model
  double nll_base = 0.0;  // −log p(next token), base
  double p_diff = 0.0;    // p(next) − p_base(next)
  bool same_top = false;  // most likely token the same
};

// Compares one position. `scratch` receives the model row's encoding (encoded_row_size
// values) and is reused between calls.
RowKld compare_row(std::span<const float> logits, const EncodedRow& base, int32_t next_token,
                   std::vector<uint16_t>* scratch);

// A value and its standard error, as llama-perplexity's mean_and_uncertainty.
struct Estimate {
  double value = 0.0;
  double error = 0.0;
};

// The running sums of llama-perplexity's kl_divergence_result, plus every position's KLD and
// Δp for the percentiles. Rows are added in position order, so the sums do not depend on the
// thread count.
class KldStats {
 public:
  void add(const RowKld& r);
  int64_t count() const { return count_; }

  Estimate log_ppl() const;       // mean nll
  Estimate log_ppl_base() const;  // mean nll_base
  Estimate ppl() const;           // exp(mean nll) ± ppl · its error
  Estimate ppl_base() const;
  double log_ppl_covariance() const;   // Cov of the two means
  double log_ppl_correlation() const;  // Cor(ln PPL(Q), ln PPL(base))
  // ln(PPL(Q)/PPL(base)): the mean of nll − nll_base and its standard error from the spread of
  // the differences. That is llama-perplexity's sqrt(err(Q)² + err(base)² − 2 cov) in exact
  // arithmetic, without the cancellation that leaves a rounding residue when the sides agree.
  Estimate log_ppl_ratio() const;
  Estimate ppl_ratio() const;   // PPL(Q)/PPL(base)
  Estimate ppl_diff() const;    // PPL(Q) − PPL(base)
  Estimate kld() const;         // mean KLD
  Estimate p_diff() const;      // mean Δp
  Estimate p_diff_rms() const;  // RMS Δp
  Estimate same_top() const;    // fraction with the same top token
  double max_abs_p_diff() const { return max_abs_p_diff_; }

  // Sorted copies, for percentiles and the median.
  std::vector<float> sorted_kld() const;
  std::vector<float> sorted_p_diff() const;

 private:
  double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_base_ = 0, sum_nll_base2_ = 0, sum_nll_nll_base_ = 0;
  double sum_diff_ = 0, sum_diff2_ = 0;  // nll − nll_base
  double sum_kld_ = 0, sum_kld2_ = 0, sum_p_diff_ = 0, sum_p_diff2_ = 0, sum_p_diff4_ = 0;
  double max_abs_p_diff_ = 0;
  int64_t n_same_top_ = 0;
  int64_t count_ = 0;
  std::vector<float> kld_values_, p_diff_values_;
};

// llama-perplexity's percentile: linear interpolation between the sorted values at
// fraction · (n − 1); the first value at fraction ≤ 0, the last at ≥ 1. `sorted` non-empty.
float percentile(std::span<const float> sorted, float fraction);
// The median of sorted values (mean of the two middle ones for an even count).
float median(std::span<const float> sorted);

}  // namespace xtile
