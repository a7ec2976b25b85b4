#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "base/error.h"
#include "ops/ops.h"

namespace xtile {
namespace sampling {
namespace {

bool before(const TokenCandidate& a, const TokenCandidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

namespace {

[[noreturn]] void nan_logit(size_t i) { fail("sampler: the logit of token ", i, " is NaN"); }

}  // namespace

void fill(std::span<const float> logits, std::vector<TokenCandidate>* c) {
  c->resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    // A NaN would break the ordering every later step relies on; it means a broken forward pass.
    if (std::isnan(logits[i])) nan_logit(i);
    (*c)[i] = {static_cast<int32_t>(i), logits[i], 0.0f};
  }
}

namespace {

void check_bias_entry(int32_t id, float bias) {
  if (id < 0) fail("sampler: logit bias for token ", id, ", which is not a token id");
  if (std::isnan(bias)) fail("sampler: the logit bias of token ", id, " is NaN");
}

}  // namespace

std::vector<std::pair<int32_t, float>> merge_logit_bias(
    std::span<const std::pair<int32_t, float>> entries) {
  std::map<int32_t, float> by_id;
  for (const auto& [id, b] : entries) {
    check_bias_entry(id, b);
    const auto [it, fresh] = by_id.emplace(id, b);
    if (fresh) continue;
    float& sum = it->second;
    if (sum == -INFINITY || b == -INFINITY) {
      sum = -INFINITY;  // a ban wins
    } else if (std::isinf(sum) || std::isinf(b)) {
      sum = INFINITY;  // then a +inf (never +inf + -inf = NaN)
    } else {
      sum += b;
    }
  }
  return {by_id.begin(), by_id.end()};
}

namespace {

void check_bias_in_vocabulary(int32_t id, size_t n_vocab) {
  if (id < 0 || static_cast<size_t>(id) >= n_vocab)
    fail("sampler: logit bias for token ", id, ", outside the vocabulary (", n_vocab, " tokens)");
}

// One bias on one logit: a finite one is added, an infinite one sets it.
void apply_bias(float* logit, float b) {
  *logit = std::isinf(b) ? b : *logit + b;
}

bool penalties_off(std::span<const int32_t> recent, float repeat, float frequency, float presence) {
  return recent.empty() || (repeat == 1.0f && frequency == 0.0f && presence == 0.0f);
}

// The penalties of a token seen n times among the recent ones.
void apply_penalty(float* logit, int32_t n, float repeat, float frequency, float presence) {
  // Dividing a negative logit would raise it, so negative ones are multiplied (llama.cpp).
  if (*logit <= 0.0f) {
    *logit *= repeat;
  } else {
    *logit /= repeat;
  }
  *logit -= static_cast<float>(n) * frequency + (n > 0 ? 1.0f : 0.0f) * presence;
}

std::unordered_map<int32_t, int32_t> counts_in_vocabulary(std::span<const int32_t> recent,
                                                          size_t n_vocab) {
  std::unordered_map<int32_t, int32_t> count;
  for (int32_t id : recent)
    if (id >= 0 && static_cast<size_t>(id) < n_vocab) ++count[id];
  return count;
}

}  // namespace

void logit_bias(std::vector<TokenCandidate>* c, std::span<const std::pair<int32_t, float>> biases) {
  for (const auto& [id, b] : biases) {
    check_bias_in_vocabulary(id, c->size());
    apply_bias(&(*c)[static_cast<size_t>(id)].logit, b);
  }
}

void penalties(std::vector<TokenCandidate>* c, std::span<const int32_t> recent, float repeat,
               float frequency, float presence) {
  if (penalties_off(recent, repeat, frequency, presence)) return;
  for (const auto& [id, n] : counts_in_vocabulary(recent, c->size()))
    apply_penalty(&(*c)[static_cast<size_t>(id)].logit, n, repeat, frequency, presence);
}

void sort(std::vector<TokenCandidate>* c) { std::sort(c->begin(), c->end(), before); }

void top_k(std::vector<TokenCandidate>* c, int32_t k) {
  if (k <= 0 || static_cast<size_t>(k) >= c->size()) {
    sort(c);
    return;
  }
  std::partial_sort(c->begin(), c->begin() + k, c->end(), before);
  c->resize(k);
}

void fill_top_k(std::span<const float> logits, std::span<const std::pair<int32_t, float>> biases,
                std::span<const int32_t> recent, float repeat, float frequency, float presence,
                int32_t k, std::vector<TokenCandidate>* c) {
  const size_t n = logits.size();
  if (k <= 0 || static_cast<size_t>(k) >= n) {  // every candidate stays: the whole chain
    fill(logits, c);
    logit_bias(c, biases);
    penalties(c, recent, repeat, frequency, presence);
    top_k(c, k);
    return;
  }
  // A bias outside the vocabulary fails, after a NaN logit as fill() then logit_bias() would.
  for (const auto& [id, b] : biases) {
    if (id >= 0 && static_cast<size_t>(id) < n) continue;
    for (size_t i = 0; i < n; ++i)
      if (std::isnan(logits[i])) nan_logit(i);
    check_bias_in_vocabulary(id, n);
  }
  // The tokens whose logits the bias and the penalties change (M), with their new values.
  std::vector<std::pair<int32_t, float>> changed;  // sorted by id
  for (const auto& [id, b] : biases) changed.emplace_back(id, logits[static_cast<size_t>(id)]);
  const auto count = penalties_off(recent, repeat, frequency, presence)
                         ? std::unordered_map<int32_t, int32_t>()
                         : counts_in_vocabulary(recent, n);
  for (const auto& [id, times] : count) changed.emplace_back(id, logits[static_cast<size_t>(id)]);
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end(),
                            [](const auto& x, const auto& y) { return x.first == y.first; }),
                changed.end());
  auto changed_at = [&](int32_t id) -> float* {
    auto it = std::lower_bound(changed.begin(), changed.end(), id,
                               [](const auto& e, int32_t v) { return e.first < v; });
    return it != changed.end() && it->first == id ? &it->second : nullptr;
  };
  for (const auto& [id, b] : biases) apply_bias(changed_at(id), b);  // in the entries' order
  for (const auto& [id, times] : count)
    apply_penalty(changed_at(id), times, repeat, frequency, presence);

  // The k + |M| largest raw logits hold every token of the top k that M does not change: each
  // one not among them has k + |M| tokens before it, at least k of them unchanged. A linear scan
  // in id order keeps the worst of the best in the heap's top; a later token (larger id)
  // displaces it only with a strictly larger logit. !(x <= worst) also stops at a NaN, so the
  // scan finds the first NaN as fill() does.
  const size_t keep = std::min(n, static_cast<size_t>(k) + changed.size());
  c->resize(keep);
  for (size_t i = 0; i < keep; ++i) {
    if (std::isnan(logits[i])) nan_logit(i);
    (*c)[i] = {static_cast<int32_t>(i), logits[i], 0.0f};
  }
  std::make_heap(c->begin(), c->end(), before);
  float worst = c->front().logit;
  auto take = [&](size_t i) {
    const float x = logits[i];
    if (x <= worst) return;
    if (std::isnan(x)) nan_logit(i);
    std::pop_heap(c->begin(), c->end(), before);
    c->back() = {static_cast<int32_t>(i), x, 0.0f};
    std::push_heap(c->begin(), c->end(), before);
    worst = c->front().logit;
  };
  // Runs of 16 logits none of which can enter are passed over in one branch (the compiler
  // vectorizes the test): nearly all of them, once the heap holds large logits.
  constexpr size_t kRun = 16;
  size_t i = keep;
  for (; i + kRun <= n; i += kRun) {
    bool enters = false;
    for (size_t j = 0; j < kRun; ++j) enters |= !(logits[i + j] <= worst);
    if (!enters) continue;
    for (size_t j = 0; j < kRun; ++j) take(i + j);
  }
  for (; i < n; ++i) take(i);
  if (!changed.empty()) {  // M's tokens with their new logits, in place of their raw ones
    std::erase_if(*c, [&](const TokenCandidate& t) { return changed_at(t.id) != nullptr; });
    for (const auto& [id, logit] : changed) c->push_back({id, logit, 0.0f});
  }
  std::sort(c->begin(), c->end(), before);
  c->resize(static_cast<size_t>(k));
}

void softmax(std::vector<TokenCandidate>* c) {
  if (c->empty()) return;
  float max = (*c)[0].logit;
  for (const TokenCandidate& t : *c) max = std::max(max, t.logit);
  double sum = 0.0;
  std::vector<double> e(c->size());
  for (size_t i = 0; i < c->size(); ++i) {
    const float l = (*c)[i].logit;
    // exp(l - max) is NaN for l = max = ±inf; the limits: a +inf logit takes an equal share of
    // everything, and all -inf (every token banned) is uniform.
    e[i] = std::isinf(max) ? (l == max ? 1.0 : 0.0) : std::exp(static_cast<double>(l) - max);
    sum += e[i];
  }
  for (size_t i = 0; i < c->size(); ++i) (*c)[i].p = static_cast<float>(e[i] / sum);
}

void top_p(std::vector<TokenCandidate>* c, float p) {
  if (p >= 1.0f || c->size() <= 1) return;
  sort(c);
  softmax(c);
  double cum = 0.0;
  for (size_t i = 0; i < c->size(); ++i) {
    cum += (*c)[i].p;
    if (cum >= p) {
      c->resize(i + 1);
      return;
    }
  }
}

void min_p(std::vector<TokenCandidate>* c, float p) {
  if (p <= 0.0f || c->size() <= 1) return;
  // p_i >= p * p_max  <=>  logit_i >= logit_max + log(p): no exponentials needed.
  float max = (*c)[0].logit;
  for (const TokenCandidate& t : *c) max = std::max(max, t.logit);
  const float threshold = max + std::log(p);
  std::erase_if(*c, [&](const TokenCandidate& t) { return t.logit < threshold; });
}

void temperature(std::vector<TokenCandidate>* c, float t) {
  if (c->empty()) return;
  float max = (*c)[0].logit;
  for (const TokenCandidate& x : *c) max = std::max(max, x.logit);
  if (std::isfinite(max) && std::isinf(max / t)) {
    for (TokenCandidate& x : *c) x.logit = (x.logit - max) / t;
    return;
  }
  for (TokenCandidate& x : *c) x.logit /= t;
}

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) fail("sampler: no candidates to choose from");
  const auto nan =
      std::find_if(logits.begin(), logits.end(), [](float x) { return std::isnan(x); });
  if (nan != logits.end()) nan_logit(static_cast<size_t>(nan - logits.begin()));
  // ops::argmax keeps the first of equal maxima: the lowest id on ties, as before() orders them.
  return static_cast<int32_t>(ops::argmax(logits.data(), static_cast<int64_t>(logits.size())));
}

int32_t argmax(std::span<const TokenCandidate> c) {
  if (c.empty()) fail("sampler: no candidates to choose from");
  const TokenCandidate* best = &c[0];
  for (const TokenCandidate& t : c) {
    if (before(t, *best)) best = &t;
  }
  return best->id;
}

}  // namespace sampling

Sampler::Sampler(const SamplerParams& params)
    : p_(params), rng_(params.seed), mu_(2.0 * params.mirostat_tau) {
  if (std::isnan(p_.temperature) || std::isnan(p_.top_p) || std::isnan(p_.min_p)) {
    fail("sampler: temperature, top-p and min-p must be numbers");
  }
  for (float v :
       {p_.typical_p, p_.top_n_sigma, p_.xtc_probability, p_.xtc_threshold, p_.dynatemp_range,
        p_.dynatemp_exponent, p_.mirostat_tau, p_.mirostat_eta, p_.dry_multiplier, p_.dry_base})
    if (!std::isfinite(v))
      fail(
          "sampler: typical-p, top-n-sigma, XTC, dynatemp, mirostat and DRY settings must be "
          "finite numbers");
  if (p_.mirostat < 0 || p_.mirostat > 2)
    fail("sampler: mirostat must be 0 (off), 1 or 2, got ", p_.mirostat);
  if (p_.dry_multiplier > 0.0f && p_.dry_base < 1.0f)
    fail("sampler: the DRY base must be >= 1, got ", p_.dry_base);
  if (p_.dry_penalty_last_n < -1 || p_.dry_allowed_length < 0)
    fail("sampler: DRY's penalty-last-n must be >= -1 and its allowed length >= 0");
  if (!std::is_sorted(p_.dry_breakers.begin(), p_.dry_breakers.end()))
    fail("sampler: the DRY sequence breakers must be sorted ids");
  if (!(p_.repeat_penalty > 0.0f)) {
    fail("sampler: repeat penalty must be > 0 (1 disables it), got ", p_.repeat_penalty);
  }
  if (p_.repeat_last_n < -1) {
    fail("sampler: repeat-last-n must be >= -1, got ", p_.repeat_last_n);
  }
  for (const auto& [id, b] : p_.logit_bias) sampling::check_bias_entry(id, b);
}

void Sampler::reset() {
  rng_.seed(p_.seed);
  mu_ = 2.0 * p_.mirostat_tau;
}

double Sampler::uniform() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

int32_t Sampler::pick(std::span<const TokenCandidate> c, double u) {
  double cum = 0.0;
  for (const TokenCandidate& t : c) {
    cum += t.p;
    if (u < cum) return t.id;
  }
  // Rounding left the total a hair below u: the last (least likely) candidate.
  return c.back().id;
}

// Mirostat (Basu et al., "Mirostat: a neural text decoding algorithm that directly controls
// perplexity"): truncate to the tokens whose surprise fits the running bound mu (version 2), or
// to the top k that Zipf's exponent, estimated from the 100 most likely, gives for mu (version
// 1); draw; move mu by eta times the drawn token's surprise's distance from tau.
int32_t Sampler::mirostat(std::vector<TokenCandidate>* c) {
  const double n_vocab = static_cast<double>(c->size());
  sampling::sort(c);
  sampling::softmax(c);
  size_t keep = 1;
  if (p_.mirostat == 2) {
    while (keep < c->size() && -std::log2(static_cast<double>((*c)[keep].p)) <= mu_) ++keep;
  } else {
    const size_t m = std::min<size_t>(100, c->size());
    double sum_tb = 0.0, sum_tt = 0.0;
    for (size_t i = 0; i + 1 < m; ++i) {
      if ((*c)[i + 1].p <= 0.0f) break;
      const double t = std::log((i + 2.0) / (i + 1.0));
      const double b = std::log(static_cast<double>((*c)[i].p) / (*c)[i + 1].p);
      sum_tb += t * b;
      sum_tt += t * t;
    }
    const double s = sum_tt > 0.0 ? sum_tb / sum_tt : 1.0;
    const double eps = s - 1.0;
    const double k =
        std::abs(eps) < 1e-12
            ? n_vocab
            : std::pow(eps * std::pow(2.0, mu_) / (1.0 - std::pow(n_vocab, -eps)), 1.0 / s);
    keep = std::isfinite(k) ? static_cast<size_t>(std::clamp(k, 1.0, n_vocab)) : c->size();
  }
  c->resize(keep);
  sampling::softmax(c);
  const int32_t id = pick(*c, uniform());
  double p_id = 1.0;
  for (const TokenCandidate& t : *c)
    if (t.id == id) p_id = t.p;
  mu_ -= p_.mirostat_eta * (-std::log2(p_id) - p_.mirostat_tau);
  return id;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (logits.empty()) fail("sampler: empty logits");
  std::span<const int32_t> recent = history;
  if (p_.repeat_last_n >= 0 && recent.size() > static_cast<size_t>(p_.repeat_last_n)) {
    recent = recent.last(p_.repeat_last_n);
  }
  const bool no_penalty =
      recent.empty() ||
      (p_.repeat_penalty == 1.0f && p_.frequency_penalty == 0.0f && p_.presence_penalty == 0.0f);
  // Greedy without penalties: the candidates' argmax straight from the logits, in one pass (a
  // server samples a row of the vocabulary per sequence per step on the thread that drives the
  // pool; building 152k candidates there cost ~2 % of a loaded server's time).
  const bool dry = p_.dry_multiplier > 0.0f;
  if (p_.temperature <= 0.0f && no_penalty && !dry && p_.logit_bias.empty())
    return sampling::argmax(logits);
  // The usual chain (top-k on, nothing that reads every candidate before it): the top k straight
  // from the logits, without a candidate per logit. A server samples each decoding sequence's
  // row between two steps; on a 152k vocabulary 0.82 -> 0.07 ms a token (bench/sampler_bench.cpp,
  // Zen 3).
  if (!dry && p_.mirostat == 0 && p_.temperature > 0.0f && p_.top_n_sigma <= 0.0f && p_.top_k > 0 &&
      static_cast<size_t>(p_.top_k) < logits.size()) {
    sampling::fill_top_k(logits, p_.logit_bias, recent, p_.repeat_penalty, p_.frequency_penalty,
                         p_.presence_penalty, p_.top_k, &cand_);
    return filter_and_draw();
  }
  sampling::fill(logits, &cand_);
  sampling::logit_bias(&cand_, p_.logit_bias);
  sampling::penalties(&cand_, recent, p_.repeat_penalty, p_.frequency_penalty,
                      p_.presence_penalty);
  if (dry) sampling::dry(&cand_, history, p_);
  if (p_.temperature <= 0.0f) return sampling::argmax(cand_);
  if (p_.mirostat != 0) {
    sampling::temperature(&cand_, p_.temperature);
    return mirostat(&cand_);
  }

  sampling::top_n_sigma(&cand_, p_.top_n_sigma);
  sampling::top_k(&cand_, p_.top_k);  // also sorts
  return filter_and_draw();
}

int32_t Sampler::filter_and_draw() {
  sampling::typical(&cand_, p_.typical_p);
  sampling::top_p(&cand_, p_.top_p);
  sampling::min_p(&cand_, p_.min_p);
  if (p_.xtc_probability > 0.0f)
    sampling::xtc(&cand_, p_.xtc_probability, p_.xtc_threshold, uniform());
  sampling::dynamic_temperature(&cand_, p_.temperature, p_.dynatemp_range, p_.dynatemp_exponent);
  sampling::softmax(&cand_);
  return pick(cand_, uniform());
}

}  // namespace xtile
