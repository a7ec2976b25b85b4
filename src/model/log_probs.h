// Per-row log-probability arithmetic of `xtile perplexity`, written to give llama-perplexity's
// figures: the negative log-likelihood of the next token, and the 16-bit encoding of a whole
// row of log-probabilities that llama-perplexity's KL-divergence base files store.
//
// Encoded row (nv = encoded_row_size(n_vocab) uint16 values, llama-perplexity's layout):
//   [0..1]  float scale = (max_logit - min_logit) / 65535
//   [2..3]  float min_log_prob = min_logit - max_logit - log(Σ exp(logit - max_logit))
//   [4 + i] code of token i: round((logit_i - min_logit) / scale), 0 at or below min_logit
//   one zero uint16 of padding when n_vocab is odd
// with min_logit the row's minimum raised to max_logit - 16 (log-probabilities more than 16
// below the top one are all stored as the floor), so that log p_i ≈ scale · code_i +
// min_log_prob.
#pragma once

#include <cstdint>
#include <span>

namespace xtile {

// −log p(tok) of the softmax of `logits`, computed as llama-perplexity's scorer does (float max,
// a double sum of float exponentials, log in double).
double token_nll(std::span<const float> logits, int32_t tok);

// uint16 values per encoded row: 2·⌈n_vocab/2⌉ + 4.
int64_t encoded_row_size(int64_t n_vocab);

// Writes the encoded row of `logits` to row[0 .. encoded_row_size(logits.size())), with the
// arithmetic of llama-perplexity's writer, so that the same logits give the same bytes.
void encode_log_probs(std::span<const float> logits, uint16_t* row);

// Read access to an encoded row of n_vocab codes.
class EncodedRow {
 public:
  EncodedRow(const uint16_t* row, int64_t n_vocab);
  float scale() const { return scale_; }
  float min_log_prob() const { return min_log_prob_; }
  uint16_t code(int64_t i) const { return codes_[i]; }
  // scale · code + min_log_prob, as llama-perplexity decodes it (float, no fma).
  float log_prob(int64_t i) const;
  // The index of the largest code (the lowest index on ties).
  int64_t argmax() const;
  int64_t n_vocab() const { return n_vocab_; }

 private:
  float scale_;
  float min_log_prob_;
  const uint16_t* codes_;
  int64_t n_vocab_;
};

}  // namespace xtile
