// Picking the next token from logits, with llama.cpp's samplers and order:
//   logit bias -> repetition penalties -> top-k -> top-p -> min-p -> temperature -> draw.
// temperature <= 0 is greedy: the largest biased and penalised logit, the lowest id on ties (the
// filters cannot change the argmax, and no random number is used).
//
// Randomness: std::mt19937_64 seeded with SamplerParams::seed. Each draw takes exactly one 64-bit
// output r, u = (r >> 11) * 2^-53 in [0, 1), and walks the surviving candidates in order of
// decreasing probability (ties: lower id first) until the cumulative probability exceeds u. The
// same seed, logits and history give the same tokens on every machine and standard library
// (no std::*_distribution, whose algorithms are implementation-defined).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace xtile {

struct SamplerParams {
  float temperature = 0.8f;     // <= 0: greedy
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off; logits of recent tokens: > 0 divided, <= 0 multiplied
  int32_t repeat_last_n = 64;   // recent tokens the penalties look at; 0: none, -1: all
  float frequency_penalty = 0.0f;  // minus count x this (llama.cpp's --frequency-penalty)
  float presence_penalty = 0.0f;   // minus this once per token present (--presence-penalty)
  // (token id, bias), one entry per token (sampling::merge_logit_bias): added to the raw
  // logit before everything else (llama.cpp's --logit-bias, OpenAI's logit_bias); -inf: the
  // token is never picked, +inf: always (the lowest id among several).
  std::vector<std::pair<int32_t, float>> logit_bias;
  uint64_t seed = 0;
};

struct TokenCandidate {
  int32_t id;
  float logit;
  float p;  // filled by sampling::softmax
};

// The individual steps, exposed for tests and for callers building their own chains. All keep
// at least one candidate.
namespace sampling {
// One candidate per logit, id = index.
void fill(std::span<const float> logits, std::vector<TokenCandidate>* c);
// The entries one per token, in ascending id order: a token's biases summed, where a -inf (a
// ban) wins over anything and then a +inf. Throws xtile::Error for a negative id or a NaN bias.
std::vector<std::pair<int32_t, float>> merge_logit_bias(
    std::span<const std::pair<int32_t, float>> entries);
// Applies the biases to candidates as fill() left them (id = index): a finite bias is added, an
// infinite one sets the logit (so an infinite logit and an opposite bias make no NaN). Throws
// xtile::Error naming an id outside the candidates (the vocabulary).
void logit_bias(std::vector<TokenCandidate>* c, std::span<const std::pair<int32_t, float>> biases);
// Penalises the candidates whose ids occur in `recent` (llama.cpp's penalties sampler). Expects
// the candidates as fill() left them (id = index).
void penalties(std::vector<TokenCandidate>* c, std::span<const int32_t> recent, float repeat,
               float frequency, float presence);
// Decreasing logit, lower id first on ties.
void sort(std::vector<TokenCandidate>* c);
// Keeps the k largest logits (k <= 0: all), sorted.
void top_k(std::vector<TokenCandidate>* c, int32_t k);
// Sets p = softmax(logit) over the candidates (in double, stored as float). Infinite logits keep
// their limits: the candidates at +inf share the whole probability, and when every logit is
// -inf (a client banned them all) each gets the same.
void softmax(std::vector<TokenCandidate>* c);
// Keeps the smallest prefix (sorted order) whose probabilities sum to >= p. p >= 1: no-op.
void top_p(std::vector<TokenCandidate>* c, float p);
// Keeps candidates whose probability is >= p x the largest one. p <= 0: no-op.
void min_p(std::vector<TokenCandidate>* c, float p);
// Divides every logit by t (t > 0). When t is so small that the largest logit over t overflows,
// the logits are taken relative to the largest first ((l - max) / t), which keeps the limit
// t -> 0 (the argmax) instead of sending every positive logit to +inf.
void temperature(std::vector<TokenCandidate>* c, float t);
// Largest logit, lowest id on ties.
int32_t argmax(std::span<const TokenCandidate> c);
// The same over the logits as fill() would make them candidates (a NaN fails as in fill()).
int32_t argmax(std::span<const float> logits);
}  // namespace sampling

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params = {});
  // The next token. `history` holds the tokens so far (prompt and generated); the penalties use
  // its last repeat_last_n. Throws xtile::Error for empty logits or invalid parameters.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history = {});
  // Restarts the PRNG from the seed (a new generation repeats the same draws).
  void reset();
  const SamplerParams& params() const { return p_; }

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<TokenCandidate> cand_;  // reused between calls
};

}  // namespace xtile
