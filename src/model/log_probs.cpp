#include "model/log_probs.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace xtile {

double token_nll(std::span<const float> logits, int32_t tok) {
  float max_logit = logits[0];
  for (float l : logits) max_logit = std::max(max_logit, l);
  double sum_exp = 0.0;
  for (float l : logits) sum_exp += std::exp(l - max_logit);
  // float difference first, then the double log: llama-perplexity's order of operations.
  const float shifted = logits[static_cast<size_t>(tok)] - max_logit;
  return -(static_cast<double>(shifted) - std::log(sum_exp));
}

int64_t encoded_row_size(int64_t n_vocab) {
  return 2 * ((n_vocab + 1) / 2) + 4;
}

void encode_log_probs(std::span<const float> logits, uint16_t* row) {
  const size_t n = logits.size();
  float max_logit = logits[0];
  float min_logit = logits[0];
  for (size_t i = 1; i < n; ++i) {
    max_logit = std::max(max_logit, logits[i]);
    min_logit = std::min(min_logit, logits[i]);
  }
  // Probabilities below e^-16 of the top one all share the floor code 0.
  min_logit = std::max(min_logit, max_logit - 16);
  double sum_exp = 0.0;
  for (float l : logits) sum_exp += std::exp(l - max_logit);
  const float log_sum_exp = static_cast<float>(std::log(sum_exp));
  const float min_log_prob = min_logit - max_logit - log_sum_exp;
  const float scale = (max_logit - min_logit) / 65535.f;
  std::memcpy(row, &scale, sizeof(float));
  std::memcpy(row + 2, &min_log_prob, sizeof(float));
  uint16_t* codes = row + 4;
  std::fill(codes, row + encoded_row_size(static_cast<int64_t>(n)), uint16_t{0});
  if (scale == 0.0f) return;  // a flat row: every code 0
  const float inv_scale = 1 / scale;
  for (size_t i = 0; i < n; ++i) {
    // nearbyint rounds half to even, as llama-perplexity's 1.5·2^23 trick does for values
    // below 2^22 (these are at most 65535 and a rounding).
    if (logits[i] > min_logit)
      codes[i] = static_cast<uint16_t>(std::nearbyint(inv_scale * (logits[i] - min_logit)));
  }
}

EncodedRow::EncodedRow(const uint16_t* row, int64_t n_vocab) : codes_(row + 4), n_vocab_(n_vocab) {
  std::memcpy(&scale_, row, sizeof(float));
  std::memcpy(&min_log_prob_, row + 2, sizeof(float));
}

float EncodedRow::log_prob(int64_t i) const {
  const float scaled = scale_ * static_cast<float>(codes_[i]);
  return scaled + min_log_prob_;
}

int64_t EncodedRow::argmax() const {
  int64_t best = 0;
  for (int64_t i = 1; i < n_vocab_; ++i)
    if (codes_[i] > codes_[best]) best = i;
  return best;
}

}  // namespace xtile
