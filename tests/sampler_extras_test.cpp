// llama-server's further samplers (model/sampler.h) on hand-made logits whose results are worked
// out by hand: top-n-sigma, locally typical sampling, XTC, the dynamic temperature, mirostat's
// truncation, and DRY, whose one-pass repeat lengths (a Z-function) are also checked against a
// direct search of every earlier position on random texts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "base/error.h"
#include "model/sampler.h"
#include "sampler_candidates.h"

namespace xtile {
namespace {
namespace sampler_extras_test {  // unity batches: CMakeLists.txt

using test::cands;
using test::ids;

// Logits whose softmax is p.
std::vector<float> logits_of(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

TEST(SamplerTopNSigma, KeepsLogitsWithinNDeviationsOfTheLargest) {
  // Mean 19/6, population deviation 4.488: n = 1 cuts at 5.51, n = 3 at -3.46.
  auto c = cands({10, 9, 0, 0, 0, 0});
  sampling::top_n_sigma(&c, 1.0f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1}));
  c = cands({10, 9, 0, 0, 0, 0});
  sampling::top_n_sigma(&c, 3.0f);
  EXPECT_EQ(c.size(), 6u);
  c = cands({10, 9, 0, 0});
  sampling::top_n_sigma(&c, -1.0f);  // off
  EXPECT_EQ(c.size(), 4u);
  c = cands({1, -INFINITY, 1, 0});  // a banned token is not in the statistics
  sampling::top_n_sigma(&c, 0.5f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 2}));
}

TEST(SamplerTypical, KeepsTheTokensWhoseSurpriseIsNearestTheEntropy) {
  // p = .5 .3 .15 .05: entropy 1.142 nats; surprises .693 1.204 1.897 2.996, distances .449
  // .062 .755 1.854: the order 1, 0, 2, 3.
  const std::vector<float> l = logits_of({0.5, 0.3, 0.15, 0.05});
  auto c = cands(l);
  sampling::typical(&c, 0.7f);  // .3 + .5 > .7
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1}));
  c = cands(l);
  sampling::typical(&c, 0.25f);  // .3 > .25
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1}));
  c = cands(l);
  sampling::typical(&c, 0.97f);  // .3 + .5 + .15 = .95, then all four
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1, 2, 3}));
  c = cands(l);
  sampling::typical(&c, 1.0f);  // off: not even sorted anew
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(SamplerXtc, RemovesTheTopChoicesButTheLeastLikelyAboveTheThreshold) {
  const std::vector<float> l = logits_of({0.4, 0.3, 0.2, 0.1});
  auto c = cands(l);
  sampling::xtc(&c, 1.0f, 0.15f, 0.0);  // .4 .3 .2 at or above: .4 and .3 go
  EXPECT_EQ(ids(c), (std::vector<int32_t>{2, 3}));
  c = cands(l);
  sampling::xtc(&c, 0.5f, 0.15f, 0.6);  // the draw says not this time
  EXPECT_EQ(c.size(), 4u);
  c = cands(l);
  sampling::xtc(&c, 1.0f, 0.35f, 0.0);  // one token above: nothing to exclude
  EXPECT_EQ(c.size(), 4u);
  c = cands(l);
  sampling::xtc(&c, 1.0f, 0.6f, 0.0);  // above one half: off
  EXPECT_EQ(c.size(), 4u);
}

TEST(SamplerDynamicTemperature, ScalesByTheNormalisedEntropy) {
  const std::vector<float> l = {2.0f, 0.0f};
  const double p0 = 1.0 / (1.0 + std::exp(-2.0)), p1 = 1.0 - p0;
  const double h = -(p0 * std::log(p0) + p1 * std::log(p1)) / std::log(2.0);
  for (float exponent : {1.0f, 2.0f}) {
    auto c = cands(l);
    sampling::dynamic_temperature(&c, 1.0f, 0.5f, exponent);
    const double t = 0.5 + (1.5 - 0.5) * std::pow(h, exponent);
    ASSERT_EQ(c.size(), 2u);
    EXPECT_NEAR(c[0].logit, 2.0 / t, 1e-5) << exponent;
    EXPECT_EQ(c[1].logit, 0.0f);
  }
  auto c = cands(l);
  sampling::dynamic_temperature(&c, 0.8f, 0.0f, 1.0f);  // no range: the plain temperature
  EXPECT_FLOAT_EQ(c[0].logit, 2.0f / 0.8f);
}

TEST(SamplerMirostat, Version2KeepsTheTokensWithinTheSurpriseBound) {
  // Surprises 1, 1.74, 2.74, 4.32 bits; tau 1 starts the bound at 2 bits: tokens 0 and 1.
  const std::vector<float> l = logits_of({0.5, 0.3, 0.15, 0.05});
  std::set<int32_t> first;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    SamplerParams p;
    p.temperature = 1.0f;
    p.mirostat = 2;
    p.mirostat_tau = 1.0f;
    p.seed = seed;
    Sampler s(p);
    first.insert(s.sample(l));
  }
  EXPECT_EQ(first, (std::set<int32_t>{0, 1}));
  // Version 1 draws valid tokens, the same ones for the same seed.
  SamplerParams p;
  p.temperature = 1.0f;
  p.mirostat = 1;
  p.seed = 7;
  Sampler a(p), b(p);
  std::vector<float> many(50);
  for (size_t i = 0; i < many.size(); ++i) many[i] = -static_cast<float>(std::log(i + 1.0));
  for (int i = 0; i < 20; ++i) {
    const int32_t t = a.sample(many);
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 50);
    EXPECT_EQ(t, b.sample(many));
  }
  p.mirostat = 3;
  EXPECT_THROW(Sampler{p}, Error);
}

SamplerParams dry_params(float multiplier, int32_t allowed) {
  SamplerParams p;
  p.dry_multiplier = multiplier;
  p.dry_base = 2.0f;
  p.dry_allowed_length = allowed;
  return p;
}

TEST(SamplerDry, PenalisesTheTokenThatWouldContinueARepeat) {
  // "1 2 3 1 2": the text's end "1 2" was followed by 3 before (a repeat of 2 tokens).
  const std::vector<int32_t> h = {1, 2, 3, 1, 2};
  auto c = cands({0, 0, 0, 0, 0});
  sampling::dry(&c, h, dry_params(0.5f, 2));
  EXPECT_EQ(c[3].logit, -0.5f);  // multiplier · 2^(2 - 2)
  for (int32_t i : {0, 1, 2, 4}) EXPECT_EQ(c[static_cast<size_t>(i)].logit, 0.0f) << i;
  c = cands({0, 0, 0, 0, 0});
  sampling::dry(&c, h, dry_params(0.5f, 3));  // 2 tokens are allowed to repeat
  EXPECT_EQ(c[3].logit, 0.0f);
  // "5 1 2 3 0 5 1 2": a repeat of 3 before 3: 0.5 · 2^(3 - 2).
  c = cands({0, 0, 0, 0, 0, 0});
  sampling::dry(&c, std::vector<int32_t>{5, 1, 2, 3, 0, 5, 1, 2}, dry_params(0.5f, 2));
  EXPECT_EQ(c[3].logit, -1.0f);
  // A breaker (1) inside ends the repeat at it: "2" alone is 1 token, under the allowed 2.
  SamplerParams b = dry_params(0.5f, 2);
  b.dry_breakers = {1};
  c = cands({0, 0, 0, 0, 0});
  sampling::dry(&c, h, b);
  EXPECT_EQ(c[3].logit, 0.0f);
  // Only the last dry_penalty_last_n tokens are searched.
  b = dry_params(0.5f, 2);
  b.dry_penalty_last_n = 3;  // "3 1 2": no earlier "1 2"
  c = cands({0, 0, 0, 0, 0});
  sampling::dry(&c, h, b);
  EXPECT_EQ(c[3].logit, 0.0f);
}

// Every earlier position searched directly: the longest common suffix of the text before it and
// the whole text, stopped at breakers and within the window.
std::vector<float> dry_by_search(const std::vector<int32_t>& history, size_t vocab,
                                 const SamplerParams& p) {
  std::vector<float> logits(vocab, 0.0f);
  std::vector<int32_t> w = history;
  if (p.dry_penalty_last_n > 0 && w.size() > static_cast<size_t>(p.dry_penalty_last_n))
    w.erase(w.begin(), w.end() - p.dry_penalty_last_n);
  const auto breaker = [&](int32_t t) {
    return std::find(p.dry_breakers.begin(), p.dry_breakers.end(), t) != p.dry_breakers.end();
  };
  std::vector<size_t> best(vocab, 0);
  for (size_t j = 1; j < w.size(); ++j) {
    size_t length = 0;
    while (length < j && !breaker(w[w.size() - 1 - length]) &&
           w[j - 1 - length] == w[w.size() - 1 - length])
      ++length;
    best[static_cast<size_t>(w[j])] = std::max(best[static_cast<size_t>(w[j])], length);
  }
  for (size_t t = 0; t < vocab; ++t)
    if (best[t] > 0 && best[t] >= static_cast<size_t>(p.dry_allowed_length))
      logits[t] -= static_cast<float>(
          p.dry_multiplier * std::pow(static_cast<double>(p.dry_base),
                                      static_cast<double>(best[t]) - p.dry_allowed_length));
  return logits;
}

TEST(SamplerDry, RepeatLengthsMatchADirectSearchOnRandomTexts) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t vocab = 2 + rng() % 4;  // few symbols: many repeats
    std::vector<int32_t> h(2 + rng() % 60);
    for (int32_t& t : h) t = static_cast<int32_t>(rng() % vocab);
    SamplerParams p = dry_params(0.25f, static_cast<int32_t>(rng() % 4));
    p.dry_base = 1.5f;
    if (trial % 3 == 0) p.dry_breakers = {static_cast<int32_t>(rng() % vocab)};
    if (trial % 4 == 0) p.dry_penalty_last_n = static_cast<int32_t>(1 + rng() % 40);
    auto c = cands(std::vector<float>(vocab, 0.0f));
    sampling::dry(&c, h, p);
    const std::vector<float> want = dry_by_search(h, vocab, p);
    for (size_t t = 0; t < vocab; ++t)
      ASSERT_FLOAT_EQ(c[t].logit, want[t]) << "trial " << trial << " token " << t;
  }
}

TEST(SamplerExtras, NeutralSettingsDrawTheSameTokensAndAllOnIsDeterministic) {
  std::mt19937 rng(9);
  std::vector<float> l(300);
  for (float& x : l) x = std::normal_distribution<float>(0.0f, 2.0f)(rng);
  SamplerParams base;
  base.seed = 42;
  SamplerParams on = base;
  on.typical_p = 0.9f;
  on.top_n_sigma = 2.0f;
  on.xtc_probability = 0.5f;
  on.xtc_threshold = 0.05f;
  on.dynatemp_range = 0.5f;
  on.dry_multiplier = 0.8f;
  Sampler a(base), b(base), x(on), y(on);
  SamplerParams explicit_neutral = base;  // the defaults written out
  explicit_neutral.typical_p = 1.0f;
  explicit_neutral.top_n_sigma = -1.0f;
  explicit_neutral.xtc_probability = 0.0f;
  Sampler n(explicit_neutral);
  std::vector<int32_t> history;
  for (int i = 0; i < 40; ++i) {
    const int32_t t = a.sample(l, history);
    EXPECT_EQ(t, n.sample(l, history));
    EXPECT_EQ(b.sample(l, history), t);
    const int32_t u = x.sample(l, history);
    EXPECT_EQ(u, y.sample(l, history));
    history.push_back(u);
  }
}

}  // namespace sampler_extras_test
}  // namespace
}  // namespace xtile
