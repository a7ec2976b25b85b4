// Samplers on hand-made logits: each filter's effect, llama.cpp's penalty rule, greedy, and the
// seeded PRNG (same seed -> same tokens, different seeds -> different tokens).
#include "model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "sampler_candidates.h"

namespace xtile {
namespace {
namespace sampler_test {  // unity batches: CMakeLists.txt

using test::cands;
using test::ids;

SamplerParams greedy_params() {
  SamplerParams p;
  p.temperature = 0.0f;
  return p;
}

TEST(SamplerGreedy, ArgmaxLowestIdOnTies) {
  Sampler s(greedy_params());
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{-5.0f, -1.0f, -7.0f}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{0.5f}), 0);
}

TEST(SamplerGreedy, DirectArgmaxAgreesWithTheCandidates) {
  // The greedy path without penalties skips the candidates: same choice, same NaN error.
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> level(-3, 3);  // few distinct values: many ties
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> logits(1 + trial % 37);
    for (float& x : logits) x = static_cast<float>(level(rng));
    if (trial % 5 == 0) logits[trial % logits.size()] = -INFINITY;
    std::vector<TokenCandidate> c;
    sampling::fill(logits, &c);
    EXPECT_EQ(sampling::argmax(logits), sampling::argmax(c));
    EXPECT_EQ(Sampler(greedy_params()).sample(logits), sampling::argmax(c));
  }
  EXPECT_THROW(Sampler(greedy_params()).sample(std::vector<float>{1.0f, NAN, 0.0f}), Error);
  EXPECT_THROW(sampling::argmax(std::span<const float>()), Error);
}

TEST(SamplerGreedy, IndependentOfSeedAndFilters) {
  const std::vector<float> logits = {0.1f, 2.5f, 2.4f, -3.0f, 1.0f};
  for (uint64_t seed : {0ull, 1ull, 12345ull}) {
    SamplerParams p = greedy_params();
    p.seed = seed;
    p.top_k = 1 + static_cast<int32_t>(seed % 3);
    p.top_p = 0.5f;
    Sampler s(p);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(logits), 1);
  }
}

TEST(SamplerFilters, TopKKeepsLargestSorted) {
  auto c = cands({0.5f, 3.0f, -1.0f, 2.0f, 3.0f});
  sampling::top_k(&c, 3);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 4, 3}));
  auto all = cands({0.5f, 3.0f, -1.0f});
  sampling::top_k(&all, 0);  // off: everything, sorted
  EXPECT_EQ(ids(all), (std::vector<int32_t>{1, 0, 2}));
}

TEST(SamplerFilters, SoftmaxSumsToOne) {
  auto c = cands({std::log(0.5f), std::log(0.3f), std::log(0.2f)});
  sampling::softmax(&c);
  EXPECT_NEAR(c[0].p, 0.5f, 1e-6);
  EXPECT_NEAR(c[1].p, 0.3f, 1e-6);
  EXPECT_NEAR(c[2].p, 0.2f, 1e-6);
}

TEST(SamplerFilters, TopPKeepsSmallestPrefixReachingP) {
  const std::vector<float> logits = {std::log(0.05f), std::log(0.5f), std::log(0.15f),
                                     std::log(0.3f)};
  auto a = cands(logits);
  sampling::top_p(&a, 0.75f);  // 0.5 + 0.3 >= 0.75
  EXPECT_EQ(ids(a), (std::vector<int32_t>{1, 3}));
  auto b = cands(logits);
  sampling::top_p(&b, 0.85f);  // needs 0.15 too
  EXPECT_EQ(ids(b), (std::vector<int32_t>{1, 3, 2}));
  auto c = cands(logits);
  sampling::top_p(&c, 0.1f);  // the first candidate alone
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1}));
  auto d = cands(logits);
  sampling::top_p(&d, 1.0f);  // off
  EXPECT_EQ(d.size(), 4u);
}

TEST(SamplerFilters, MinPRelativeToBest) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                     std::log(0.05f)};
  auto a = cands(logits);
  sampling::min_p(&a, 0.2f);  // threshold 0.1
  EXPECT_EQ(ids(a), (std::vector<int32_t>{0, 1, 2}));
  auto b = cands(logits);
  sampling::min_p(&b, 0.7f);  // threshold 0.35
  EXPECT_EQ(ids(b), (std::vector<int32_t>{0}));
  auto c = cands(logits);
  sampling::min_p(&c, 0.0f);  // off
  EXPECT_EQ(c.size(), 4u);
}

TEST(SamplerFilters, TemperatureScalesLogits) {
  auto c = cands({2.0f, -1.0f});
  sampling::temperature(&c, 0.5f);
  EXPECT_FLOAT_EQ(c[0].logit, 4.0f);
  EXPECT_FLOAT_EQ(c[1].logit, -2.0f);
}

TEST(SamplerPenalties, RepeatDividesPositiveMultipliesNegative) {
  auto c = cands({2.0f, -2.0f, 1.5f, 0.0f});
  const std::vector<int32_t> recent = {0, 1, 1, 3};
  sampling::penalties(&c, recent, 2.0f, 0.0f, 0.0f);
  EXPECT_FLOAT_EQ(c[0].logit, 1.0f);
  EXPECT_FLOAT_EQ(c[1].logit, -4.0f);  // counted once, whatever the repetitions
  EXPECT_FLOAT_EQ(c[2].logit, 1.5f);
  EXPECT_FLOAT_EQ(c[3].logit, 0.0f);
  auto f = cands({2.0f, -2.0f, 1.5f});
  sampling::penalties(&f, recent, 1.0f, 0.25f, 0.5f);  // frequency x count + presence
  EXPECT_FLOAT_EQ(f[0].logit, 2.0f - 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(f[1].logit, -2.0f - 0.5f - 0.5f);
  EXPECT_FLOAT_EQ(f[2].logit, 1.5f);
}

TEST(SamplerPenalties, ChangeGreedyChoiceWithinWindow) {
  const std::vector<float> logits = {2.0f, -2.0f, 1.5f};
  SamplerParams p = greedy_params();
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  EXPECT_EQ(s.sample(logits, std::vector<int32_t>{}), 0);
  EXPECT_EQ(s.sample(logits, std::vector<int32_t>{1, 0}), 2);  // 0 penalised to 1.0 < 1.5
  // Token 0 is three tokens back, outside the window of 2: not penalised.
  EXPECT_EQ(s.sample(logits, std::vector<int32_t>{0, 1, 1}), 0);
  p.repeat_last_n = 0;  // penalties off
  Sampler off(p);
  EXPECT_EQ(off.sample(logits, std::vector<int32_t>{0, 0}), 0);
  p.repeat_last_n = -1;  // the whole history
  Sampler all(p);
  EXPECT_EQ(all.sample(logits, std::vector<int32_t>{0, 1, 1, 1, 1}), 2);
}

std::vector<int32_t> draw(const SamplerParams& p, const std::vector<float>& logits, int n) {
  Sampler s(p);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.sample(logits));
  return out;
}

SamplerParams random_params(uint64_t seed) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

TEST(SamplerSeed, SameSeedSameSequence) {
  const std::vector<float> flat(1000, 0.0f);
  const auto a = draw(random_params(42), flat, 64);
  EXPECT_EQ(a, draw(random_params(42), flat, 64));
  Sampler s(random_params(42));
  std::vector<int32_t> first;
  for (int i = 0; i < 64; ++i) first.push_back(s.sample(flat));
  s.reset();
  std::vector<int32_t> again;
  for (int i = 0; i < 64; ++i) again.push_back(s.sample(flat));
  EXPECT_EQ(first, again);
  EXPECT_EQ(first, a);
}

TEST(SamplerSeed, DifferentSeedDifferentSequence) {
  const std::vector<float> flat(1000, 0.0f);
  const auto a = draw(random_params(1), flat, 64);
  const auto b = draw(random_params(2), flat, 64);
  EXPECT_NE(a, b);
  // A flat distribution over 1000 tokens: 64 draws hit many distinct tokens.
  std::vector<int32_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_GT(std::unique(sorted.begin(), sorted.end()) - sorted.begin(), 50);
}

// The documented PRNG: mt19937_64, u = (r >> 11) * 2^-53, candidates by decreasing
// probability. With two equally likely tokens the choice is token 0 iff u < 0.5.
TEST(SamplerSeed, DocumentedDrawRule) {
  std::mt19937_64 rng(7);
  Sampler s(random_params(7));
  for (int i = 0; i < 32; ++i) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    EXPECT_EQ(s.sample(std::vector<float>{0.0f, 0.0f}), u < 0.5 ? 0 : 1) << i;
  }
}

TEST(SamplerDistribution, FrequenciesFollowTemperature) {
  const std::vector<float> logits = {0.0f, std::log(3.0f)};  // p = 0.25, 0.75 at t = 1
  auto frac1 = [&](float t) {
    SamplerParams p = random_params(123);
    p.temperature = t;
    Sampler s(p);
    int ones = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) ones += s.sample(logits) == 1;
    return static_cast<double>(ones) / n;
  };
  EXPECT_NEAR(frac1(1.0f), 0.75, 0.02);
  EXPECT_NEAR(frac1(0.5f), 0.9, 0.02);    // 9:1 at t = 0.5
  EXPECT_NEAR(frac1(1000.0f), 0.5, 0.02);  // nearly flat
}

TEST(SamplerOrder, FiltersRunBeforeTemperature) {
  // top-k 1 leaves only the best token, whatever the temperature does afterwards.
  SamplerParams p = random_params(9);
  p.top_k = 1;
  p.temperature = 100.0f;
  EXPECT_EQ(draw(p, {0.0f, 0.1f, 0.05f}, 50), std::vector<int32_t>(50, 1));
  // min-p judged on the untempered distribution: 0.01 / 0.99 < 0.05, so token 0 is gone
  // before a high temperature could make it likely.
  SamplerParams q = random_params(9);
  q.min_p = 0.05f;
  q.temperature = 100.0f;
  EXPECT_EQ(draw(q, {std::log(0.01f), std::log(0.99f)}, 50), std::vector<int32_t>(50, 1));
}

TEST(SamplerFilters, SoftmaxKeepsTheLimitsOfInfiniteLogits) {
  // +inf logits share everything; the finite ones get nothing.
  std::vector<TokenCandidate> a = cands({1.0f, INFINITY, 3.0f, INFINITY});
  sampling::softmax(&a);
  EXPECT_EQ(a[0].p, 0.0f);
  EXPECT_EQ(a[1].p, 0.5f);
  EXPECT_EQ(a[2].p, 0.0f);
  EXPECT_EQ(a[3].p, 0.5f);
  // Every logit -inf (every token banned): uniform, not NaN.
  std::vector<TokenCandidate> b = cands({-INFINITY, -INFINITY, -INFINITY, -INFINITY});
  sampling::softmax(&b);
  for (const TokenCandidate& t : b) EXPECT_EQ(t.p, 0.25f);
}

TEST(SamplerFilters, TemperatureSoSmallItOverflowsIsTheArgmax) {
  // 2 / 1e-40 overflows: the logits are taken relative to the largest, so the best token keeps
  // all the probability (before, every positive logit became +inf and shared it).
  SamplerParams p = random_params(5);
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 1e-40f;
  EXPECT_EQ(draw(p, {1.0f, 2.0f, 1.9f, -3.0f}, 40), std::vector<int32_t>(40, 1));
}

TEST(SamplerLogitBias, BanAndBoostChangeTheGreedyChoice) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.5f};
  SamplerParams p = greedy_params();
  EXPECT_EQ(Sampler(p).sample(logits), 1);
  p.logit_bias = {{1, -INFINITY}};
  EXPECT_EQ(Sampler(p).sample(logits), 2);
  p.logit_bias = {{1, -1.5f}};  // 3 - 1.5 < 2
  EXPECT_EQ(Sampler(p).sample(logits), 2);
  p.logit_bias = {{3, 2.6f}};  // 0.5 + 2.6 > 3
  EXPECT_EQ(Sampler(p).sample(logits), 3);
  p.logit_bias = {{0, INFINITY}};
  EXPECT_EQ(Sampler(p).sample(logits), 0);
}

TEST(SamplerLogitBias, AppliesBeforePenaltiesAndFiltersWhenSampling) {
  // top-k 1 after the bias: the boosted token is the only candidate at any temperature.
  SamplerParams p = random_params(11);
  p.top_k = 1;
  p.temperature = 50.0f;
  p.logit_bias = {{2, 10.0f}};
  EXPECT_EQ(draw(p, {0.0f, 5.0f, 0.0f}, 30), std::vector<int32_t>(30, 2));
  // A banned token is never drawn, even where it was the most likely.
  SamplerParams q = random_params(12);
  q.top_k = 0;
  q.top_p = 1.0f;
  q.min_p = 0.0f;
  q.temperature = 1.0f;
  q.logit_bias = {{1, -INFINITY}};
  for (int32_t id : draw(q, {0.0f, 8.0f, 0.0f}, 200)) EXPECT_NE(id, 1);
}

TEST(SamplerLogitBias, EveryTokenBannedStillPicksOneWithoutNaN) {
  for (float t : {0.0f, 0.8f}) {
    SamplerParams p = random_params(3);
    p.temperature = t;
    p.logit_bias = {{0, -INFINITY}, {1, -INFINITY}, {2, -INFINITY}};
    Sampler s(p);
    for (int i = 0; i < 20; ++i) {
      const int32_t id = s.sample(std::vector<float>{0.1f, 0.2f, 0.3f});
      EXPECT_GE(id, 0);
      EXPECT_LE(id, 2);
    }
  }
}

TEST(SamplerLogitBias, MergeSumsPerTokenAndABanWins) {
  const std::vector<std::pair<int32_t, float>> in = {{5, 1.0f},     {2, -INFINITY}, {5, 0.5f},
                                                     {2, 3.0f},     {7, INFINITY},  {7, -1.0f},
                                                     {9, INFINITY}, {9, -INFINITY}};
  const auto out = sampling::merge_logit_bias(in);
  const std::vector<std::pair<int32_t, float>> want = {
      {2, -INFINITY}, {5, 1.5f}, {7, INFINITY}, {9, -INFINITY}};
  EXPECT_EQ(out, want);
  EXPECT_THROW(sampling::merge_logit_bias(std::vector<std::pair<int32_t, float>>{{-1, 1.0f}}),
               Error);
  EXPECT_THROW(sampling::merge_logit_bias(std::vector<std::pair<int32_t, float>>{{1, NAN}}), Error);
}

TEST(SamplerLogitBias, TokenOutsideTheVocabularyIsAnError) {
  SamplerParams p = greedy_params();
  p.logit_bias = {{3, 1.0f}};
  try {
    Sampler(p).sample(std::vector<float>{0.0f, 1.0f, 2.0f});
    ADD_FAILURE() << "accepted a bias for token 3 of 3";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary (3 tokens)"), std::string::npos)
        << e.what();
  }
  p.logit_bias = {{-2, 1.0f}};
  EXPECT_THROW(Sampler{p}, Error);
}

TEST(SamplerErrors, BadInputs) {
  Sampler s;
  EXPECT_THROW(s.sample(std::vector<float>{}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{0.0f, NAN}), Error);
  SamplerParams p;
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler{p}, Error);
  p.repeat_penalty = 1.0f;
  p.repeat_last_n = -2;
  EXPECT_THROW(Sampler{p}, Error);
}

// fill_top_k is the chain fill -> logit_bias -> penalties -> top_k without a candidate per logit:
// the same candidates to the byte and the same errors, on random logits with many ties, +-inf
// (and a grammar's mask: nearly all -inf), NaNs, biases (repeated ids, +-inf, outside the
// vocabulary) and penalties (ids outside too), over vocabularies of 1..300 tokens (the scan's
// 16-logit runs and its tail) and every k.
TEST(SamplerFilters, FillTopKIsTheChainsTopK) {
  std::mt19937 rng(11);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int compared = 0, errors = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const int n = trial < 40 ? 1 + trial : pick(1, 300);
    std::vector<float> logits(static_cast<size_t>(n));
    const bool ties = trial % 3 == 0;
    for (float& x : logits)
      x = ties ? static_cast<float>(pick(-4, 4))
               : std::ldexp(static_cast<float>(pick(-1000, 1000)), -6);
    for (int e = pick(0, 2); e > 0; --e)
      logits[static_cast<size_t>(pick(0, n - 1))] = pick(0, 1) ? INFINITY : -INFINITY;
    if (trial % 11 == 0)  // a grammar's mask: all but a few tokens at -inf
      for (float& x : logits)
        if (pick(0, 9) != 0) x = -INFINITY;
    if (trial % 97 == 0) logits[static_cast<size_t>(pick(0, n - 1))] = NAN;
    std::vector<std::pair<int32_t, float>> biases;
    for (int b = trial % 4 == 0 ? 0 : pick(0, 4); b > 0; --b) {
      const float v = pick(0, 9) == 0 ? (pick(0, 1) ? INFINITY : -INFINITY)
                                      : static_cast<float>(pick(-8, 8)) * 0.75f;
      const int32_t id = trial % 89 == 0 && b == 1 ? n + pick(0, 2) : pick(0, n - 1);
      biases.emplace_back(id, v);
    }
    std::vector<int32_t> recent;
    for (int r = trial % 5 == 0 ? 0 : pick(0, 12); r > 0; --r)
      recent.push_back(pick(0, 9) == 0 ? n + pick(0, 3) : pick(0, n - 1));
    const float repeat = trial % 7 == 0 ? 1.0f : 1.0f + static_cast<float>(pick(1, 8)) * 0.125f;
    const float frequency = trial % 2 ? 0.0f : 0.25f, presence = trial % 6 == 1 ? 0.5f : 0.0f;
    const int32_t k = pick(-1, n + 1);

    std::vector<TokenCandidate> chain, fast;
    std::string chain_error, fast_error;
    try {
      sampling::fill(logits, &chain);
      sampling::logit_bias(&chain, biases);
      sampling::penalties(&chain, recent, repeat, frequency, presence);
      sampling::top_k(&chain, k);
    } catch (const Error& e) {
      chain_error = e.what();
    }
    try {
      sampling::fill_top_k(logits, biases, recent, repeat, frequency, presence, k, &fast);
    } catch (const Error& e) {
      fast_error = e.what();
    }
    ASSERT_EQ(fast_error, chain_error) << "trial " << trial;
    if (!chain_error.empty()) {
      ++errors;
      continue;
    }
    ASSERT_EQ(fast.size(), chain.size()) << "trial " << trial;
    ASSERT_EQ(std::memcmp(fast.data(), chain.data(), chain.size() * sizeof(TokenCandidate)), 0)
        << "trial " << trial << " n " << n << " k " << k;
    ++compared;
  }
  EXPECT_GT(compared, 2500);
  EXPECT_GT(errors, 20);  // both kinds of error were reached
}

// The sampler takes the top k through fill_top_k when nothing before it reads every candidate:
// the same tokens as the chain with top-n-sigma's full pass forced on (at a width that keeps
// everything), from the same seeds.
TEST(SamplerSeed, TopKShortcutDrawsTheChainsTokens) {
  std::mt19937 rng(5);
  std::normal_distribution<float> logit(0.0f, 3.0f);
  std::vector<float> logits(5000);
  std::vector<int32_t> history;
  SamplerParams p;
  p.seed = 9;
  p.repeat_penalty = 1.3f;
  p.logit_bias = {{7, 2.5f}, {42, -INFINITY}};
  SamplerParams full = p;
  full.top_n_sigma = 1e30f;  // on, and keeps every candidate: the whole chain runs
  Sampler fast(p), chain(full);
  for (int step = 0; step < 200; ++step) {
    for (float& x : logits) x = logit(rng);
    const int32_t a = fast.sample(logits, history), b = chain.sample(logits, history);
    ASSERT_EQ(a, b) << "step " << step;
    history.push_back(a);
  }
}

}  // namespace sampler_test
}  // namespace
}  // namespace xtile
