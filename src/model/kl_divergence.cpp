#include "model/kl_divergence.h"

#include <algorithm>
#include <cmath>

namespace xtile {

namespace {

// llama-perplexity's mean_and_uncertainty: the mean and the standard error of the mean (0
// with 10 values or fewer).
Estimate mean_and_error(double sum, double sum2, int64_t count) {
  if (count < 1) return {};
  const double n = static_cast<double>(count);
  const double mean = sum / n;
  const double var = sum2 / n - mean * mean;
  return {mean, var > 0 && count > 10 ? std::sqrt(var / (n - 1)) : 0.0};
}

// sqrt of a difference of variances that is 0 in exact arithmetic when the two sides agree:
// rounding must not turn it into the root of a tiny negative number.
double root_of_variance(double v) {
  return v > 0 ? std::sqrt(v) : 0.0;
}

// The model's float log-probabilities of a row, computed only when a floor code needs one.
class FloatLogProbs {
 public:
  explicit FloatLogProbs(std::span<const float> logits) : logits_(logits) {}
  float at(int64_t i) {
    if (!ready_) {
      max_logit_ = logits_[0];
      for (float l : logits_) max_logit_ = std::max(max_logit_, l);
      double sum_exp = 0.0;
      for (float l : logits_) sum_exp += std::exp(l - max_logit_);
      log_sum_exp_ = static_cast<float>(std::log(sum_exp));
      ready_ = true;
    }
    return logits_[static_cast<size_t>(i)] - max_logit_ - log_sum_exp_;
  }

 private:
  std::span<const float> logits_;
  bool ready_ = false;
  float max_logit_ = 0.0f;
  float log_sum_exp_ = 0.0f;
};

}  // namespace

RowKld compare_row(std::span<const float> logits, const EncodedRow& base, int32_t next_token,
                   std::vector<uint16_t>* scratch) {
  const int64_t n = static_cast<int64_t>(logits.size());
  scratch->resize(static_cast<size_t>(encoded_row_size(n)));
  encode_log_probs(logits, scratch->data());
  const EncodedRow model(scratch->data(), n);
  FloatLogProbs exact(logits);
  // The model's log-probability of token i: its encoded value, except at the floor code when
  // the base's is above its floor (see the header).
  auto model_log_prob = [&](int64_t i) {
    return model.code(i) == 0 && base.code(i) != 0 ? exact.at(i) : model.log_prob(i);
  };

  RowKld r;
  for (int64_t i = 0; i < n; ++i) {
    const float lp_base = base.log_prob(i);
    if (lp_base > -16.f) {
      const double d = static_cast<double>(lp_base) - static_cast<double>(model_log_prob(i));
      r.kld += std::exp(static_cast<double>(lp_base)) * d;
    }
  }
  r.nll = -static_cast<double>(model_log_prob(next_token));
  r.nll_base = -static_cast<double>(base.log_prob(next_token));
  r.p_diff = std::exp(-r.nll) - std::exp(-r.nll_base);
  r.same_top = model.argmax() == base.argmax();
  return r;
}

void KldStats::add(const RowKld& r) {
  sum_nll_ += r.nll;
  sum_nll2_ += r.nll * r.nll;
  sum_nll_base_ += r.nll_base;
  sum_nll_base2_ += r.nll_base * r.nll_base;
  sum_nll_nll_base_ += r.nll * r.nll_base;
  const double diff = r.nll - r.nll_base;
  sum_diff_ += diff;
  sum_diff2_ += diff * diff;
  sum_kld_ += r.kld;
  sum_kld2_ += r.kld * r.kld;
  sum_p_diff_ += r.p_diff;
  const double p_diff2 = r.p_diff * r.p_diff;
  sum_p_diff2_ += p_diff2;
  sum_p_diff4_ += p_diff2 * p_diff2;
  max_abs_p_diff_ = std::max(max_abs_p_diff_, std::fabs(r.p_diff));
  n_same_top_ += r.same_top;
  ++count_;
  kld_values_.push_back(static_cast<float>(r.kld));
  p_diff_values_.push_back(static_cast<float>(r.p_diff));
}

Estimate KldStats::log_ppl() const {
  return mean_and_error(sum_nll_, sum_nll2_, count_);
}

Estimate KldStats::log_ppl_base() const {
  return mean_and_error(sum_nll_base_, sum_nll_base2_, count_);
}

Estimate KldStats::ppl() const {
  const Estimate l = log_ppl();
  const double v = std::exp(l.value);
  return {v, v * l.error};
}

Estimate KldStats::ppl_base() const {
  const Estimate l = log_ppl_base();
  const double v = std::exp(l.value);
  return {v, v * l.error};
}

double KldStats::log_ppl_covariance() const {
  if (count_ < 10) return 0.0;
  const double n = static_cast<double>(count_);
  const double cov = sum_nll_nll_base_ / n - (sum_nll_ / n) * (sum_nll_base_ / n);
  return cov / (n - 1);
}

double KldStats::log_ppl_correlation() const {
  return log_ppl_covariance() / (log_ppl().error * log_ppl_base().error);
}

Estimate KldStats::log_ppl_ratio() const {
  return {log_ppl().value - log_ppl_base().value,
          mean_and_error(sum_diff_, sum_diff2_, count_).error};
}

Estimate KldStats::ppl_ratio() const {
  const Estimate l = log_ppl_ratio();
  const double v = std::exp(l.value);
  return {v, v * l.error};
}

Estimate KldStats::ppl_diff() const {
  const Estimate a = ppl();
  const Estimate b = ppl_base();
  const double cov = a.value * b.value * log_ppl_covariance();
  return {a.value - b.value, root_of_variance(a.error * a.error + b.error * b.error - 2.0 * cov)};
}

Estimate KldStats::kld() const {
  return mean_and_error(sum_kld_, sum_kld2_, count_);
}

Estimate KldStats::p_diff() const {
  return mean_and_error(sum_p_diff_, sum_p_diff2_, count_);
}

Estimate KldStats::p_diff_rms() const {
  const Estimate mse = mean_and_error(sum_p_diff2_, sum_p_diff4_, count_);
  const double rms = std::sqrt(mse.value);
  // d sqrt(x) = dx / (2 sqrt(x)); no spread to report when every Δp is 0.
  return {rms, rms > 0 ? 0.5 / rms * mse.error : 0.0};
}

Estimate KldStats::same_top() const {
  if (count_ < 1) return {};
  const double p = static_cast<double>(n_same_top_) / static_cast<double>(count_);
  return {p, count_ > 1 ? std::sqrt(p * (1.0 - p) / static_cast<double>(count_ - 1)) : 0.0};
}

std::vector<float> KldStats::sorted_kld() const {
  std::vector<float> v = kld_values_;
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<float> KldStats::sorted_p_diff() const {
  std::vector<float> v = p_diff_values_;
  std::sort(v.begin(), v.end());
  return v;
}

float percentile(std::span<const float> sorted, float fraction) {
  if (fraction <= 0) return sorted.front();
  if (fraction >= 1) return sorted.back();
  float p = fraction * static_cast<float>(sorted.size() - 1);
  const size_t ip = static_cast<size_t>(p);
  p -= static_cast<float>(ip);
  return (1 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
}

float median(std::span<const float> sorted) {
  const size_t n = sorted.size();
  return n % 2 == 0 ? 0.5f * (sorted[n / 2] + sorted[n / 2 - 1]) : sorted[n / 2];
}

}  // namespace xtile
