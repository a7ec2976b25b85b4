// The scheduler in process (no HTTP): the server's determinism promise. A request gives the
// same tokens, log-probabilities and text whether it runs alone or beside seven others, in any
// slot, with any batch size (so any split of prompts into chunks), after being preempted and
// recomputed, from a slot's prompt cache or from scratch, and on every kernel tier. Also:
// cancellation, the bounded queue, and max_tokens / stop strings / context limits.
#include "server/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "model/session.h"
#include "model/weights.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {
namespace {
namespace scheduler_test {  // unity batches: CMakeLists.txt

struct Model {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<WeightStore> weights;
  std::unique_ptr<Tokenizer> tok;
};

Model load(const std::string& path, Tier tier, int threads = 2) {
  Model m;
  m.pool = std::make_unique<ThreadPool>(threads);
  LoadOptions lo;
  lo.tier = tier;
  m.weights = WeightStore::load(path, *m.pool, lo);
  m.tok = Tokenizer::from_gguf(m.weights->file());
  return m;
}

struct Request {
  std::vector<int32_t> prompt;
  GenerationParams gen;
};

struct Outcome {
  std::vector<int32_t> ids;
  std::vector<uint32_t> logprob_bits;  // the chosen token's, then each alternative's
  std::vector<int32_t> top_ids;
  std::string text;
  FinishReason reason = FinishReason::kNone;
  JobStats stats;
};

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

Outcome collect(Job& job) {
  Outcome o;
  Job::Cursor cursor;
  for (;;) {
    Job::Update u;
    if (!job.wait(&cursor, &u, std::chrono::seconds(120))) {
      ADD_FAILURE() << "a job did not finish in 120 s";
      return o;
    }
    o.text += u.text;
    for (const TokenOut& t : u.tokens) {
      o.ids.push_back(t.id);
      o.logprob_bits.push_back(bits(t.logprob));
      for (const auto& [id, lp] : t.top) {
        o.top_ids.push_back(id);
        o.logprob_bits.push_back(bits(lp));
      }
    }
    if (u.done) break;
  }
  o.reason = job.finish_reason();
  o.stats = job.stats();
  return o;
}

// Eight different requests: prompts of different lengths, greedy and sampled, penalties, a
// stop string, log-probabilities with alternatives.
std::vector<Request> eight_requests(const Tokenizer& tok) {
  const char* texts[] = {
      "Once upon a time",
      "The little dog ran to the park and saw a big red ball. He wanted to play with it, so he",
      "Lily",
      "One day, a girl named Sue went to the store with her mom. They bought apples, milk and",
      "Tom and his friend",
      "The sun was hot.",
      "There was a cat who liked to sleep all day long in the warm sun. One morning the cat woke "
      "up and",
      "Bob had a toy car."};
  std::vector<Request> rs;
  for (int i = 0; i < 8; ++i) {
    Request r;
    r.prompt = tok.encode(texts[i], true, false);
    r.gen.max_tokens = 24 + 9 * i;
    r.gen.ignore_eos = i % 2 == 0;
    r.gen.sampler.seed = 1000 + static_cast<uint64_t>(i);
    r.gen.sampler.temperature = i == 0 ? 0.0f : 0.6f + 0.1f * static_cast<float>(i);
    r.gen.sampler.top_k = i == 3 ? 0 : 40;
    r.gen.sampler.repeat_penalty = i == 5 ? 1.3f : 1.0f;
    r.gen.logprobs = true;
    r.gen.n_probs = i % 3;
    if (i == 6) r.gen.stop = {"the"};
    rs.push_back(r);
  }
  return rs;
}

std::vector<Outcome> run_alone(const Model& m, const std::vector<Request>& rs) {
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 1;
  o.n_ctx = o.kv_budget = 512;
  Scheduler s(*m.weights, *m.pool, *m.tok, o, metrics);
  std::vector<Outcome> out;
  for (const Request& r : rs) {
    auto job = std::make_shared<Job>(r.prompt, r.gen);
    EXPECT_EQ(s.submit(job), Scheduler::Submit::kQueued);
    out.push_back(collect(*job));
  }
  return out;
}

std::vector<Outcome> run_together(const Model& m, const std::vector<Request>& rs,
                                  const SchedulerOptions& o, Metrics* metrics) {
  Scheduler s(*m.weights, *m.pool, *m.tok, o, *metrics);
  std::vector<std::shared_ptr<Job>> jobs;
  for (const Request& r : rs) {
    jobs.push_back(std::make_shared<Job>(r.prompt, r.gen));
    EXPECT_EQ(s.submit(jobs.back()), Scheduler::Submit::kQueued);
  }
  std::vector<Outcome> out;
  for (auto& j : jobs) out.push_back(collect(*j));
  return out;
}

void expect_same(const std::vector<Outcome>& a, const std::vector<Outcome>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    EXPECT_EQ(a[i].ids, b[i].ids);
    EXPECT_EQ(a[i].logprob_bits, b[i].logprob_bits);
    EXPECT_EQ(a[i].top_ids, b[i].top_ids);
    EXPECT_EQ(a[i].text, b[i].text);
    EXPECT_EQ(a[i].reason, b[i].reason);
    EXPECT_EQ(a[i].stats.completion_tokens, b[i].stats.completion_tokens);
  }
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = xtile::test::fixture_path("models/stories260K.gguf");
    if (path_.empty()) GTEST_SKIP() << "../shared/fixtures/models/stories260K.gguf is absent";
    model_ = load(path_, cpu_caps().best_tier());
    requests_ = eight_requests(*model_.tok);
  }
  std::string path_;
  Model model_;
  std::vector<Request> requests_;
};

TEST_F(SchedulerTest, EightRequestsTogetherGiveTheBitsTheyGiveAlone) {
  const std::vector<Outcome> alone = run_alone(model_, requests_);
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_GT(alone[i].ids.size(), 0u) << i;
    if (requests_[i].gen.ignore_eos && requests_[i].gen.stop.empty()) {
      EXPECT_EQ(alone[i].stats.completion_tokens, requests_[i].gen.max_tokens) << i;
    }
  }
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 8;
  o.n_ctx = o.kv_budget = 512;
  expect_same(alone, run_together(model_, requests_, o, &metrics));
  // They did run side by side: some forward passes held more than one slot.
  EXPECT_GT(metrics.busy_slots_total.load(), metrics.decode_total.load());
}

TEST_F(SchedulerTest, AnySlotCountAndBatchSplitGiveTheSameBits) {
  const std::vector<Outcome> alone = run_alone(model_, requests_);
  for (auto [slots, batch] : {std::pair{3, 5}, std::pair{8, 1}, std::pair{5, 37}}) {
    SCOPED_TRACE(std::to_string(slots) + " slots, batch " + std::to_string(batch));
    Metrics metrics;
    SchedulerOptions o;
    o.n_slots = slots;
    o.n_batch = batch;
    o.n_ctx = 512;
    o.kv_budget = 512 * 2;
    expect_same(alone, run_together(model_, requests_, o, &metrics));
  }
}

TEST_F(SchedulerTest, PreemptedRequestsAreRecomputedWithTheSameBits) {
  const std::vector<Outcome> alone = run_alone(model_, requests_);
  // A budget of 160 positions: each request fits alone, eight together do not.
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 8;
  o.n_ctx = o.kv_budget = 160;
  const std::vector<Outcome> together = run_together(model_, requests_, o, &metrics);
  expect_same(alone, together);
  EXPECT_GT(metrics.preemptions_total.load(), 0u);
  EXPECT_EQ(metrics.requests_failed.load(), 0u);
  int preempted = 0;
  for (const Outcome& t : together) preempted += t.stats.preemptions;
  EXPECT_EQ(static_cast<uint64_t>(preempted), metrics.preemptions_total.load());
  EXPECT_LE(metrics.kv_used.load(), 160);
}

TEST_F(SchedulerTest, EveryTierGivesTheSameBits) {
  const Model ref = load(path_, Tier::ref, 1);
  const std::vector<Outcome> alone_ref = run_alone(ref, requests_);
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 4;
  o.n_batch = 16;
  o.n_ctx = o.kv_budget = 512;
  expect_same(alone_ref, run_together(model_, requests_, o, &metrics));
}

TEST_F(SchedulerTest, FollowUpReusesTheSlotCacheWithTheSameBits) {
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 2;
  o.n_ctx = o.kv_budget = 512;
  Scheduler s(*model_.weights, *model_.pool, *model_.tok, o, metrics);
  Request first = requests_[1];
  auto a = std::make_shared<Job>(first.prompt, first.gen);
  ASSERT_EQ(s.submit(a), Scheduler::Submit::kQueued);
  const Outcome oa = collect(*a);
  // The next turn: the first prompt, its answer, and more.
  Request next = requests_[2];
  next.prompt = first.prompt;
  next.prompt.insert(next.prompt.end(), oa.ids.begin(), oa.ids.end());
  const std::vector<int32_t> more = model_.tok->encode(" Then they went home.", false, false);
  next.prompt.insert(next.prompt.end(), more.begin(), more.end());
  auto b = std::make_shared<Job>(next.prompt, next.gen);
  ASSERT_EQ(s.submit(b), Scheduler::Submit::kQueued);
  const Outcome ob = collect(*b);
  // Everything the first request evaluated was reused: its prompt and answer, but the last
  // answer token when it stopped at the length limit (sampled, never evaluated); after an
  // end-of-generation token (sampled, not in the answer) every answer token was evaluated.
  const bool eog = oa.stats.completion_tokens > static_cast<int64_t>(oa.ids.size());
  EXPECT_EQ(ob.stats.cached_tokens,
            static_cast<int64_t>(first.prompt.size() + oa.ids.size()) - (eog ? 0 : 1));
  EXPECT_EQ(ob.stats.slot, oa.stats.slot);
  // And it gives what a fresh server gives (one scheduler on the pool at a time).
  s.stop();
  expect_same(run_alone(model_, {next}), {ob});
}

// A request's n choices (submitted together, seeds counting up): the prompt is read once, by
// the first choice, and copied into the others' slots; each choice gives the bits its request
// gives alone, whatever the batch split, and under a budget that preempts.
std::vector<Request> choices_of(const Request& r, int n) {
  std::vector<Request> rs;
  for (int i = 0; i < n; ++i) {
    Request c = r;
    c.gen.sampler.seed += static_cast<uint64_t>(i);
    rs.push_back(c);
  }
  return rs;
}

std::vector<Outcome> run_choices(const Model& m, const std::vector<Request>& rs,
                                 const SchedulerOptions& o, Metrics* metrics) {
  Scheduler s(*m.weights, *m.pool, *m.tok, o, *metrics);
  std::vector<std::shared_ptr<Job>> jobs;
  for (const Request& r : rs) jobs.push_back(std::make_shared<Job>(r.prompt, r.gen));
  EXPECT_EQ(s.submit(jobs), Scheduler::Submit::kQueued);
  std::vector<Outcome> out;
  for (auto& j : jobs) out.push_back(collect(*j));
  return out;
}

TEST_F(SchedulerTest, ChoicesReadThePromptOnceAndGiveTheBitsOfTheirSeedsAlone) {
  const Request& base = requests_[3];  // 20-odd prompt tokens, sampled
  const std::vector<Request> rs = choices_of(base, 4);
  const std::vector<Outcome> alone = run_alone(model_, rs);
  EXPECT_NE(alone[0].ids, alone[1].ids);  // the seeds differ, so do the samples
  const int64_t n_prompt = static_cast<int64_t>(base.prompt.size());
  for (int64_t batch : {int64_t{5}, int64_t{256}}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    Metrics metrics;
    SchedulerOptions o;
    o.n_slots = 4;
    o.n_batch = batch;
    o.n_ctx = o.kv_budget = 512;
    const std::vector<Outcome> together = run_choices(model_, rs, o, &metrics);
    expect_same(alone, together);
    // The first choice read the prompt; each other one copied all of it but its last token.
    EXPECT_EQ(together[0].stats.cached_tokens, 0);
    for (size_t i = 1; i < together.size(); ++i)
      EXPECT_EQ(together[i].stats.cached_tokens, n_prompt - 1) << i;
    EXPECT_EQ(metrics.copied_tokens_total.load(), static_cast<uint64_t>(3 * (n_prompt - 1)));
    EXPECT_LE(metrics.prompt_tokens_total.load(), static_cast<uint64_t>(n_prompt));
  }
}

TEST_F(SchedulerTest, PreemptedChoicesKeepTheirBits) {
  Request base = requests_[5];
  base.gen.max_tokens = 70;
  base.gen.ignore_eos = true;
  const std::vector<Request> rs = choices_of(base, 4);
  const std::vector<Outcome> alone = run_alone(model_, rs);
  // Each choice fits alone (prompt + 70), four together do not.
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 4;
  o.n_batch = 7;
  o.n_ctx = o.kv_budget = 160;
  expect_same(alone, run_choices(model_, rs, o, &metrics));
  EXPECT_GT(metrics.preemptions_total.load(), 0u);
  EXPECT_GT(metrics.copied_tokens_total.load(), 0u);
  EXPECT_EQ(metrics.requests_failed.load(), 0u);
}

TEST_F(SchedulerTest, PromptStartingAsAnotherSlotsCacheIsCopiedWithTheSameBits) {
  Request first = requests_[1];
  first.gen.max_tokens = 300;
  first.gen.ignore_eos = true;
  Request second = requests_[2];
  second.prompt = first.prompt;
  const std::vector<int32_t> more = model_.tok->encode(" Then they went home.", false, false);
  second.prompt.insert(second.prompt.end(), more.begin(), more.end());
  const std::vector<Outcome> alone = run_alone(model_, {first, second});
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 2;
  o.n_ctx = o.kv_budget = 512;
  Outcome oa, ob;
  {
    Scheduler s(*model_.weights, *model_.pool, *model_.tok, o, metrics);
    auto a = std::make_shared<Job>(first.prompt, first.gen);
    ASSERT_EQ(s.submit(a), Scheduler::Submit::kQueued);
    // Once the first has read its prompt (its first token is out), the second comes: the first
    // still runs in its slot, so the second gets the other one and copies the prompt.
    Job::Cursor peek;
    Job::Update u;
    while (!a->wait(&peek, &u, std::chrono::seconds(60)) || (u.tokens.empty() && !u.done)) {
    }
    auto b = std::make_shared<Job>(second.prompt, second.gen);
    ASSERT_EQ(s.submit(b), Scheduler::Submit::kQueued);
    oa = collect(*a);
    ob = collect(*b);
  }
  expect_same(alone, {oa, ob});
  EXPECT_NE(oa.stats.slot, ob.stats.slot);
  EXPECT_EQ(ob.stats.cached_tokens, static_cast<int64_t>(first.prompt.size()));
  EXPECT_EQ(metrics.copied_tokens_total.load(), first.prompt.size());
}

// echo with logprobs: every prompt token but the first is published with the log-softmax of
// the logits of the position before it (computed here from a Session's own logits, in double as
// the scheduler's contract says), before the generated tokens; the same bits beside other
// requests, at any batch split, after preemption, and when a slot has the prompt cached (it is
// read again: a cached position has no logits).
TEST_F(SchedulerTest, PromptLogprobsScoreEachPromptTokenAndKeepTheirBits) {
  Request e = requests_[3];
  e.gen.prompt_logprobs = true;
  e.gen.logprobs = true;
  e.gen.n_probs = 2;
  e.gen.max_tokens = 5;
  const size_t n_prompt = e.prompt.size();
  const std::vector<Outcome> alone = run_alone(model_, {e});
  const Outcome& a = alone[0];
  ASSERT_GE(a.ids.size(), n_prompt + 1);
  EXPECT_EQ(
      std::vector<int32_t>(a.ids.begin(), a.ids.begin() + static_cast<std::ptrdiff_t>(n_prompt)),
      e.prompt);
  EXPECT_EQ(a.stats.completion_tokens, 5);
  {
    SessionOptions so;
    so.n_ctx = 512;
    Session session(*model_.weights, *model_.pool, so);
    std::vector<float> logits;
    session.eval(e.prompt, /*all_logits=*/true, &logits);
    const size_t v = static_cast<size_t>(session.n_vocab());
    // Outcome.logprob_bits: per token its logprob, then its n_probs alternatives (none for the
    // first prompt token).
    EXPECT_TRUE(std::isnan([&] {
      float f;
      std::memcpy(&f, &a.logprob_bits[0], sizeof f);
      return f;
    }()));
    size_t at = 1;
    for (size_t j = 1; j < n_prompt; ++j, at += 1 + 2) {
      const float* row = logits.data() + (j - 1) * v;
      float max = row[0];
      for (size_t t = 0; t < v; ++t) max = std::max(max, row[t]);
      double sum = 0.0;
      for (size_t t = 0; t < v; ++t) sum += std::exp(static_cast<double>(row[t]) - max);
      const double lse = static_cast<double>(max) + std::log(sum);
      const float want =
          static_cast<float>(static_cast<double>(row[static_cast<size_t>(e.prompt[j])]) - lse);
      EXPECT_EQ(a.logprob_bits[at], bits(want)) << "prompt token " << j;
    }
  }
  // Beside the eight requests, at a batch split of 5 and under a budget that preempts.
  std::vector<Request> rs = requests_;
  rs[3] = e;
  const std::vector<Outcome> mixed_alone = run_alone(model_, rs);
  for (auto [batch, budget] :
       {std::pair{int64_t{5}, int64_t{512}}, std::pair{int64_t{16}, int64_t{160}}}) {
    SCOPED_TRACE("batch " + std::to_string(batch) + ", budget " + std::to_string(budget));
    Metrics metrics;
    SchedulerOptions o;
    o.n_slots = 8;
    o.n_batch = batch;
    o.n_ctx = o.kv_budget = budget;
    expect_same(mixed_alone, run_together(model_, rs, o, &metrics));
  }
  // The prompt in a slot's cache already: scored all the same. And echo without generating.
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 1;
  o.n_ctx = o.kv_budget = 512;
  Outcome cached, scored_only;
  {
    Scheduler s(*model_.weights, *model_.pool, *model_.tok, o, metrics);
    Request plain = e;
    plain.gen.prompt_logprobs = false;
    auto first = std::make_shared<Job>(plain.prompt, plain.gen);
    ASSERT_EQ(s.submit(first), Scheduler::Submit::kQueued);
    collect(*first);
    auto again = std::make_shared<Job>(e.prompt, e.gen);
    ASSERT_EQ(s.submit(again), Scheduler::Submit::kQueued);
    cached = collect(*again);
    Request zero = e;
    zero.gen.max_tokens = 0;
    auto none = std::make_shared<Job>(zero.prompt, zero.gen);
    ASSERT_EQ(s.submit(none), Scheduler::Submit::kQueued);
    scored_only = collect(*none);
  }
  expect_same(alone, {cached});
  EXPECT_EQ(scored_only.ids, e.prompt);
  EXPECT_EQ(scored_only.reason, FinishReason::kLength);
  EXPECT_EQ(scored_only.stats.completion_tokens, 0);
  EXPECT_EQ(scored_only.logprob_bits,
            std::vector<uint32_t>(
                a.logprob_bits.begin(),
                a.logprob_bits.begin() + static_cast<std::ptrdiff_t>(1 + (n_prompt - 1) * 3)));
}

// Everything at once, at random: requests whose prompts share beginnings (copied between
// slots), groups of choices (one reads, the others wait and copy), echo with prompt scores
// (read again, never copied), under budgets that preempt and batch sizes that split prompts.
// Every job gives the bits its request gives alone.
TEST_F(SchedulerTest, RandomMixesOfChoicesEchoAndSharedPrefixesKeepTheirBits) {
  std::mt19937 rng(2026);
  const std::vector<int32_t> stem =
      model_.tok->encode("Once upon a time, in a small town,", true, false);
  const char* tails[] = {" a cat", " there lived a girl named Lily who", " the sun", " Tom",
                         " a big dog ran and ran until"};
  uint64_t preempted = 0, copied = 0;
  for (int trial = 0; trial < 8; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    // Groups: 1-3 jobs of one prompt each (a request's choices, seeds counting up).
    std::vector<std::vector<Request>> groups;
    const int n_groups = 3 + static_cast<int>(rng() % 3);
    for (int g = 0; g < n_groups; ++g) {
      Request r;
      r.prompt = stem;
      if (rng() % 4 != 0) {  // most share the stem; some add a tail
        const std::vector<int32_t> t = model_.tok->encode(tails[rng() % 5], false, false);
        r.prompt.insert(r.prompt.end(), t.begin(), t.end());
      }
      r.gen.max_tokens = static_cast<int64_t>(rng() % 40);
      r.gen.ignore_eos = rng() % 2 == 0;
      r.gen.sampler.seed = rng();
      r.gen.sampler.temperature = rng() % 3 == 0 ? 0.0f : 0.9f;
      r.gen.logprobs = true;
      r.gen.n_probs = static_cast<int>(rng() % 3);
      r.gen.prompt_logprobs = rng() % 3 == 0;
      if (r.gen.max_tokens == 0 && !r.gen.prompt_logprobs) r.gen.max_tokens = 3;
      groups.push_back(choices_of(r, 1 + static_cast<int>(rng() % 3)));
    }
    std::vector<Request> all;
    for (const auto& g : groups) all.insert(all.end(), g.begin(), g.end());
    const std::vector<Outcome> alone = run_alone(model_, all);
    Metrics metrics;
    SchedulerOptions o;
    o.n_slots = 4 + static_cast<int>(rng() % 4);
    o.n_batch = 3 + static_cast<int64_t>(rng() % 40);
    o.n_ctx = 96;
    o.kv_budget = 96 + static_cast<int64_t>(rng() % 120);
    std::vector<Outcome> together;
    {
      Scheduler s(*model_.weights, *model_.pool, *model_.tok, o, metrics);
      std::vector<std::vector<std::shared_ptr<Job>>> jobs;
      for (const auto& g : groups) {
        jobs.emplace_back();
        for (const Request& r : g) jobs.back().push_back(std::make_shared<Job>(r.prompt, r.gen));
        ASSERT_EQ(s.submit(jobs.back()), Scheduler::Submit::kQueued);
      }
      for (auto& g : jobs)
        for (auto& j : g) together.push_back(collect(*j));
    }
    expect_same(alone, together);
    EXPECT_EQ(metrics.requests_failed.load(), 0u);
    preempted += metrics.preemptions_total.load();
    copied += metrics.copied_tokens_total.load();
  }
  // The mixes did what they are for.
  EXPECT_GT(preempted, 0u);
  EXPECT_GT(copied, 0u);
}

// An embedding job's vectors: the prompt's hidden states pooled as Session gives them alone
// (the last row's, the mean of all rows in double, or every row), the same bits beside
// generating requests, split into small batches, preempted, and with a prompt whose beginning
// another slot's cache holds.
std::vector<std::vector<float>> pooled_alone(const Model& m, const std::vector<int32_t>& prompt,
                                             Pooling p) {
  SessionOptions so;
  so.n_ctx = 512;
  Session s(*m.weights, *m.pool, so);
  std::vector<Session::Row> rows;
  for (int32_t t : prompt) rows.push_back({0, t, false, true});
  std::vector<float> logits, hidden;
  s.eval_rows(rows, &logits, &hidden);
  const size_t e = hidden.size() / prompt.size();
  std::vector<std::vector<float>> out;
  if (p == Pooling::kTokens) {
    for (size_t r = 0; r < prompt.size(); ++r)
      out.emplace_back(hidden.begin() + static_cast<std::ptrdiff_t>(r * e),
                       hidden.begin() + static_cast<std::ptrdiff_t>((r + 1) * e));
    return out;
  }
  std::vector<double> sum(e, 0.0);
  const size_t first = p == Pooling::kLast ? prompt.size() - 1 : 0;
  for (size_t r = first; r < prompt.size(); ++r)
    for (size_t i = 0; i < e; ++i)
      sum[i] = p == Pooling::kLast ? hidden[r * e + i] : sum[i] + hidden[r * e + i];
  const double n = p == Pooling::kMean ? static_cast<double>(prompt.size()) : 1.0;
  out.emplace_back(e);
  for (size_t i = 0; i < e; ++i) out[0][i] = static_cast<float>(sum[i] / n);
  return out;
}

TEST_F(SchedulerTest, EmbeddingsArePooledHiddenStatesWithTheSameBitsBesideOthers) {
  for (const Pooling pooling : {Pooling::kLast, Pooling::kMean, Pooling::kTokens}) {
    SCOPED_TRACE(pooling_name(pooling));
    std::vector<Request> embeds;
    for (const Request& r : requests_) {
      Request e{r.prompt, {}};
      e.gen.embedding = pooling;
      embeds.push_back(e);
    }
    // The last one starts as the first: its beginning is in another slot's cache.
    embeds.back().prompt = embeds.front().prompt;
    embeds.back().prompt.push_back(42);
    std::vector<std::vector<std::vector<float>>> want;
    for (const Request& e : embeds) want.push_back(pooled_alone(model_, e.prompt, pooling));
    // Small budgets and batches, generating requests beside them.
    for (const int64_t budget : {int64_t{1024}, int64_t{160}}) {
      Metrics metrics;
      SchedulerOptions o;
      o.n_slots = 6;
      o.n_batch = 9;
      o.n_ctx = 160;
      o.kv_budget = budget;
      Scheduler s(*model_.weights, *model_.pool, *model_.tok, o, metrics);
      std::vector<std::shared_ptr<Job>> gen, emb;
      for (size_t i = 0; i < embeds.size(); ++i) {
        gen.push_back(std::make_shared<Job>(requests_[i].prompt, requests_[i].gen));
        emb.push_back(std::make_shared<Job>(embeds[i].prompt, embeds[i].gen));
        ASSERT_EQ(s.submit(gen.back()), Scheduler::Submit::kQueued);
        ASSERT_EQ(s.submit(emb.back()), Scheduler::Submit::kQueued);
      }
      for (size_t i = 0; i < emb.size(); ++i) {
        const Outcome o = collect(*emb[i]);
        EXPECT_EQ(o.reason, FinishReason::kStop);
        EXPECT_TRUE(o.ids.empty());  // nothing generated
        const std::vector<std::vector<float>> got = emb[i]->embedding();
        ASSERT_EQ(got.size(), want[i].size()) << "input " << i;
        for (size_t r = 0; r < got.size(); ++r) {
          ASSERT_EQ(got[r].size(), want[i][r].size()) << "input " << i;
          EXPECT_EQ(0, std::memcmp(got[r].data(), want[i][r].data(), got[r].size() * sizeof(float)))
              << "input " << i << ", row " << r << ", budget " << budget;
        }
      }
      for (auto& g : gen) collect(*g);
      EXPECT_EQ(metrics.requests_failed.load(), 0u);
      if (budget == 160) {
        EXPECT_GT(metrics.preemptions_total.load(), 0u);
      }
    }
  }
}

TEST_F(SchedulerTest, CancelEndsOneRequestAndTheOthersGoOn) {
  const std::vector<Outcome> alone =
      run_alone(model_, {requests_[3]});  // (one pool user at a time)
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 2;
  o.n_ctx = o.kv_budget = 512;
  Scheduler s(*model_.weights, *model_.pool, *model_.tok, o, metrics);
  Request longer = requests_[0];
  longer.gen.max_tokens = -1;  // until the context is full
  auto doomed = std::make_shared<Job>(longer.prompt, longer.gen);
  auto other = std::make_shared<Job>(requests_[3].prompt, requests_[3].gen);
  ASSERT_EQ(s.submit(doomed), Scheduler::Submit::kQueued);
  ASSERT_EQ(s.submit(other), Scheduler::Submit::kQueued);
  doomed->cancel();
  const Outcome c = collect(*doomed);
  EXPECT_EQ(c.reason, FinishReason::kCancelled);
  expect_same(alone, {collect(*other)});
  EXPECT_EQ(metrics.requests_cancelled.load(), 1u);
}

TEST_F(SchedulerTest, FullQueueRefusesAndLeavesTheJobUntouched) {
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 1;
  o.max_queue = 1;
  o.n_ctx = o.kv_budget = 512;
  Scheduler s(*model_.weights, *model_.pool, *model_.tok, o, metrics);
  Request r = requests_[0];
  r.gen.max_tokens = -1;
  std::vector<std::shared_ptr<Job>> jobs;
  int refused = 0;
  for (int i = 0; i < 4; ++i) {
    auto j = std::make_shared<Job>(r.prompt, r.gen);
    if (s.submit(j) == Scheduler::Submit::kQueueFull) {
      ++refused;
    } else {
      jobs.push_back(j);
    }
  }
  // One runs (or is about to), one waits: at least two of four are refused.
  EXPECT_GE(refused, 2);
  EXPECT_EQ(metrics.requests_rejected.load(), static_cast<uint64_t>(refused));
  for (auto& j : jobs) EXPECT_EQ(collect(*j).reason, FinishReason::kLength);
  EXPECT_GE(s.retry_after_seconds(), 1);
}

TEST_F(SchedulerTest, LengthStopAndContextLimits) {
  Metrics metrics;
  SchedulerOptions o;
  o.n_slots = 2;
  o.n_ctx = 64;
  o.kv_budget = 128;
  Scheduler s(*model_.weights, *model_.pool, *model_.tok, o, metrics);
  Request r = requests_[0];  // greedy, ignores EOS
  r.gen.max_tokens = 10;
  auto a = std::make_shared<Job>(r.prompt, r.gen);
  s.submit(a);
  const Outcome oa = collect(*a);
  EXPECT_EQ(oa.reason, FinishReason::kLength);
  EXPECT_EQ(oa.ids.size(), 10u);
  // Until the context is full: prompt + generated = n_ctx + 1 (the last token is sampled from
  // the last position's logits but never evaluated).
  r.gen.max_tokens = -1;
  auto b = std::make_shared<Job>(r.prompt, r.gen);
  s.submit(b);
  const Outcome ob = collect(*b);
  EXPECT_EQ(ob.reason, FinishReason::kLength);
  EXPECT_EQ(static_cast<int64_t>(r.prompt.size() + ob.ids.size()), o.n_ctx + 1);
  // A stop string taken from the greedy text: the text ends before it, and stop is the reason.
  ASSERT_GT(oa.text.size(), 8u);
  const std::string stop = oa.text.substr(oa.text.size() / 2, 3);
  r.gen.max_tokens = 10;
  r.gen.stop = {stop};
  auto c = std::make_shared<Job>(r.prompt, r.gen);
  s.submit(c);
  const Outcome oc = collect(*c);
  EXPECT_EQ(oc.reason, FinishReason::kStop);
  EXPECT_EQ(oc.text, oa.text.substr(0, oa.text.find(stop)));
  // max_tokens 0: nothing is generated.
  r.gen.max_tokens = 0;
  auto d = std::make_shared<Job>(r.prompt, r.gen);
  s.submit(d);
  const Outcome od = collect(*d);
  EXPECT_EQ(od.reason, FinishReason::kLength);
  EXPECT_TRUE(od.ids.empty());
}

}  // namespace scheduler_test
}  // namespace
}  // namespace xtile::server
