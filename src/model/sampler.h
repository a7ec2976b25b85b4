// Picking the next token from logits, with llama.cpp's samplers and order:
//   logit bias -> repetition penalties -> DRY -> top-n-sigma -> top-k -> typical -> top-p ->
//   min-p -> XTC -> temperature (dynamic with a range) -> draw,
// or with mirostat (1 or 2): logit bias -> penalties -> DRY -> temperature -> mirostat's draw.
// temperature <= 0 is greedy: the largest biased and penalised logit, the lowest id on ties (the
// filters cannot change the argmax, and no random number is used). Each step at its neutral
// setting (the defaults below) leaves the candidates as they were and draws nothing.
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

  // llama-server's further samplers (the papers' and llama.cpp's meanings; neutral by default).
  float typical_p = 1.0f;     // locally typical sampling (Meister et al.); >= 1: off
  float top_n_sigma = -1.0f;  // keeps logits >= max - n·σ of the logits (Tang et al.); <= 0: off
  float xtc_probability = 0.0f;    // "exclude top choices": with this chance, the tokens at or
  float xtc_threshold = 0.1f;      // above the threshold all go but the least likely of them
  float dynatemp_range = 0.0f;     // temperature ± range, by the candidates' normalised entropy
  float dynatemp_exponent = 1.0f;  // raised to this power
  int32_t mirostat = 0;            // 1 or 2: Mirostat (Basu et al.) replaces the filters
  float mirostat_tau = 5.0f;       // the target surprise, in bits
  float mirostat_eta = 0.1f;       // its learning rate
  // DRY ("don't repeat yourself", p-e-w): a token that would continue a repeat of the text's
  // end at least dry_allowed_length tokens long loses multiplier · base^(length - allowed). The
  // repeats are looked for in the last dry_penalty_last_n tokens (-1: all) and stop at a
  // sequence breaker: the tokens listed here (the server lists those whose text holds one of the
  // request's breaker strings), ascending.
  float dry_multiplier = 0.0f;  // <= 0: off
  float dry_base = 1.75f;
  int32_t dry_allowed_length = 2;
  int32_t dry_penalty_last_n = -1;
  std::vector<int32_t> dry_breakers;
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
// fill, logit_bias, penalties and top_k in one: the same candidates, the same errors, without a
// candidate per logit (a scan for the k + (tokens the bias or penalties change) largest).
void fill_top_k(std::span<const float> logits, std::span<const std::pair<int32_t, float>> biases,
                std::span<const int32_t> recent, float repeat, float frequency, float presence,
                int32_t k, std::vector<TokenCandidate>* c);
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
// Keeps the candidates whose logit is at least the largest minus n standard deviations of the
// logits (the population's, over the finite ones). n <= 0: no-op.
void top_n_sigma(std::vector<TokenCandidate>* c, float n);
// Locally typical sampling: sorted by how far each token's surprise -log p lies from the
// entropy, keeps the shortest such prefix whose probabilities sum to more than p. p >= 1: no-op.
void typical(std::vector<TokenCandidate>* c, float p);
// XTC: when u < probability (u the draw the caller made) and two or more candidates have
// p >= threshold, removes all of those but the least likely one. Leaves the candidates sorted.
void xtc(std::vector<TokenCandidate>* c, float probability, float threshold, double u);
// Temperature t ± range scaled by the candidates' normalised entropy H / log(n) raised to
// `exponent` (llama.cpp's dynamic temperature): divides the logits by it. range <= 0: t.
void dynamic_temperature(std::vector<TokenCandidate>* c, float t, float range, float exponent);
// DRY's penalty (SamplerParams::dry_*) on candidates as fill() left them (id = index), from the
// tokens so far.
void dry(std::vector<TokenCandidate>* c, std::span<const int32_t> history, const SamplerParams& p);
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
  double uniform();  // the next draw in [0, 1)
  // A token from the candidates' p (sorted, most likely first) and draw u.
  static int32_t pick(std::span<const TokenCandidate> c, double u);
  int32_t mirostat(std::vector<TokenCandidate>* c);  // the draw, and mu's update
  // The chain after top-k (typical, top-p, min-p, XTC, temperature) on cand_, and the draw.
  int32_t filter_and_draw();

  SamplerParams p_;
  std::mt19937_64 rng_;
  double mu_ = 0.0;                   // mirostat's running surprise bound (2 tau at the start)
  std::vector<TokenCandidate> cand_;  // reused between calls
};

}  // namespace xtile
