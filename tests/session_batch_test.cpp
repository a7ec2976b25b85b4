// Several sequences in one forward pass (Session::eval_rows, the server's continuous batching):
// a sequence's logits are the same bits whether it runs alone or beside others, whatever the
// batch split, the slot, the moment it joins, and however its cache grew; prefix reuse by
// truncation; the KV budget refuses without evaluating anything.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "base/error.h"
#include "cpu/thread_pool.h"
#include "model/session.h"
#include "model/synth.h"
#include "model/weights.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace session_batch_test {  // unity batches: CMakeLists.txt

std::string model_path(const std::string& preset, GgmlType type) {
  static std::map<std::string, std::string> made;
  const std::string key = preset + std::string(ggml_type_name(type));
  auto it = made.find(key);
  if (it != made.end()) return it->second;
  const std::string p = test::temp_path("batch-" + key + ".gguf").string();
  synth::Options o;
  o.preset = preset;
  o.type = type;
  synth::write_model(o, p);
  return made[key] = p;
}

std::vector<int32_t> random_tokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % 512);
  return t;
}

// Every row's logits of one sequence: its prompt, then `gen` tokens fed one at a time.
using Rows = std::vector<std::vector<float>>;

Rows run_alone(const WeightStore& w, ThreadPool& pool, const std::vector<int32_t>& prompt,
               const std::vector<int32_t>& gen, KvType kv = KvType::f16) {
  SessionOptions so;
  so.n_ctx = 512;
  so.kv_type = kv;
  Session s(w, pool, so);
  Rows out;
  std::vector<float> logits;
  s.eval(prompt, true, &logits);
  const size_t v = static_cast<size_t>(w.config().n_vocab);
  for (size_t i = 0; i < prompt.size(); ++i)
    out.emplace_back(logits.begin() + i * v, logits.begin() + (i + 1) * v);
  for (int32_t t : gen) {
    s.eval({&t, 1}, false, &logits);
    out.push_back(logits);
  }
  return out;
}

void expect_rows(const Rows& got, const Rows& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(0, std::memcmp(got[i].data(), want[i].data(), got[i].size() * sizeof(float)))
        << what << ": row " << i;
}

struct Seq {
  std::vector<int32_t> prompt, gen;
  int start_step = 0;  // the decode step at which it joins
};

// The sequences through one multi-sequence session: each joins at its step with its whole
// prompt (in the same forward pass as the others' decode rows), then decodes one token per step.
std::vector<Rows> run_together(const WeightStore& w, ThreadPool& pool, const std::vector<Seq>& seqs,
                               int64_t n_batch, const std::vector<int>& slot_of,
                               KvType kv = KvType::f16) {
  SessionOptions so;
  so.n_ctx = 512;
  so.kv_type = kv;
  so.n_batch = n_batch;
  so.n_seq_max = 8;
  Session s(w, pool, so);
  std::vector<Rows> out(seqs.size());
  std::vector<size_t> next_gen(seqs.size(), 0);
  const size_t v = static_cast<size_t>(w.config().n_vocab);
  for (int step = 0;; ++step) {
    std::vector<Session::Row> rows;
    std::vector<size_t> owner;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int slot = slot_of[i];
      if (step == seqs[i].start_step) {
        for (int32_t t : seqs[i].prompt) rows.push_back({slot, t, true}), owner.push_back(i);
      } else if (step > seqs[i].start_step && next_gen[i] < seqs[i].gen.size()) {
        rows.push_back({slot, seqs[i].gen[next_gen[i]++], true});
        owner.push_back(i);
      }
    }
    if (rows.empty()) {
      bool pending = false;
      for (const Seq& q : seqs) pending = pending || step < q.start_step;
      if (!pending) break;
      continue;
    }
    std::vector<float> logits;
    s.eval_rows(rows, &logits);
    for (size_t r = 0; r < rows.size(); ++r)
      out[owner[r]].emplace_back(logits.begin() + r * v, logits.begin() + (r + 1) * v);
  }
  return out;
}

TEST(SessionBatch, EachSequenceGivesTheBitsItGivesAlone) {
  for (const std::string preset : {"tiny-qwen3", "tiny-qwen3moe"}) {
    ThreadPool pool(2);
    auto w = WeightStore::load(model_path(preset, GgmlType::Q4_0), pool, LoadOptions{});
    std::vector<Seq> seqs;
    for (int i = 0; i < 5; ++i)
      seqs.push_back({random_tokens(3 + 7 * i, 10 + i), random_tokens(6, 20 + i), i % 3});
    std::vector<Rows> alone;
    for (const Seq& q : seqs) alone.push_back(run_alone(*w, pool, q.prompt, q.gen));
    // Different slots and batch splits: a row's bits never depend on its neighbours.
    for (auto [n_batch, slots] : {std::pair{512, std::vector<int>{0, 1, 2, 3, 4}},
                                  std::pair{7, std::vector<int>{4, 2, 7, 0, 5}},
                                  std::pair{1, std::vector<int>{1, 0, 3, 2, 6}}}) {
      const auto together = run_together(*w, pool, seqs, n_batch, slots);
      for (size_t i = 0; i < seqs.size(); ++i)
        expect_rows(together[i], alone[i],
                    preset + " sequence " + std::to_string(i) + ", batch " + std::to_string(n_batch));
    }
  }
}

// Hidden states (embeddings): the output norm's rows, the same bits with logits asked or not and
// whatever runs beside them, and what the output head reads: each logit is the dot product of
// the head's row with its hidden state (f32 weights: the head is a float matmul, so the sum
// in double agrees to float rounding).
TEST(SessionBatch, HiddenStatesAreWhatTheHeadReads) {
  ThreadPool pool(2);
  auto w = WeightStore::load(model_path("tiny-qwen3", GgmlType::F32), pool, LoadOptions{});
  const int64_t e = w->config().n_embd, v = w->config().n_vocab;
  const std::vector<int32_t> a = random_tokens(19, 31), b = random_tokens(11, 32);
  SessionOptions so;
  so.n_ctx = 128;
  so.n_seq_max = 4;
  // Alone: every row with logits and its hidden state.
  Session alone(*w, pool, so);
  std::vector<Session::Row> rows;
  for (int32_t t : a) rows.push_back({0, t, true, true});
  std::vector<float> logits, hidden;
  alone.eval_rows(rows, &logits, &hidden);
  ASSERT_EQ(hidden.size(), a.size() * static_cast<size_t>(e));
  const Projection& head = w->output();
  ASSERT_EQ(head.parts.size(), 1u);
  ASSERT_FALSE(head.parts[0].packed);  // f32: float rows
  const float* wout = head.parts[0].f32;
  std::mt19937 rng(5);
  for (size_t r = 0; r < a.size(); ++r)
    for (int k = 0; k < 16; ++k) {
      const int64_t j = static_cast<int64_t>(rng() % static_cast<uint32_t>(v));
      double dot = 0, mag = 0;
      for (int64_t c = 0; c < e; ++c) {
        dot += double(wout[j * e + c]) * hidden[r * e + c];
        mag += std::abs(double(wout[j * e + c]) * hidden[r * e + c]);
      }
      EXPECT_NEAR(logits[r * v + j], dot, 1e-5 * mag + 1e-6) << "row " << r << " logit " << j;
    }
  // Beside another sequence, split in batches of 5, hidden rows alone or with logits: the same
  // bits.
  so.n_batch = 5;
  Session mixed(*w, pool, so);
  std::vector<Session::Row> both;
  for (size_t i = 0; i < a.size(); ++i) {
    both.push_back({2, a[i], i % 3 == 0, true});
    if (i < b.size()) both.push_back({1, b[i], i % 2 == 0, i % 4 == 1});
  }
  std::vector<float> mixed_logits, mixed_hidden;
  mixed.eval_rows(both, &mixed_logits, &mixed_hidden);
  size_t h = 0, l = 0, pos = 0;  // outputs so far, and the next row of sequence 2
  for (const Session::Row& r : both) {
    if (r.seq == 2) {
      EXPECT_EQ(
          0, std::memcmp(mixed_hidden.data() + h * e, hidden.data() + pos * e, sizeof(float) * e))
          << "hidden row " << pos;
      if (r.logits) {
        EXPECT_EQ(
            0, std::memcmp(mixed_logits.data() + l * v, logits.data() + pos * v, sizeof(float) * v))
            << "logits row " << pos;
      }
      ++pos;
    }
    h += r.hidden ? 1 : 0;
    l += r.logits ? 1 : 0;
  }
  EXPECT_EQ(h * static_cast<size_t>(e), mixed_hidden.size());
  // Hidden rows without an output to put them in: refused before anything runs.
  EXPECT_THROW(mixed.eval_rows(rows, &logits), Error);
}

TEST(SessionBatch, CachesGrowPastTheirFirstAllocation) {
  // 300-token prompts: each sequence's cache starts at 256 positions and is copied into a bigger
  // one in the middle of the run; for the chunked fp16 layout and q8_0's rows.
  ThreadPool pool(2);
  auto w = WeightStore::load(model_path("tiny-qwen3", GgmlType::Q8_0), pool, LoadOptions{});
  std::vector<Seq> seqs = {{random_tokens(200, 1), random_tokens(90, 2), 0},
                           {random_tokens(300, 3), random_tokens(4, 4), 1}};
  for (KvType kv : {KvType::f16, KvType::q8_0}) {
    const auto together = run_together(*w, pool, seqs, 64, {3, 5}, kv);
    for (size_t i = 0; i < seqs.size(); ++i)
      expect_rows(together[i], run_alone(*w, pool, seqs[i].prompt, seqs[i].gen, kv),
                  std::string(kv_type_name(kv)) + " sequence " + std::to_string(i));
  }
}

TEST(SessionBatch, TruncatedPrefixContinuesAsIfFresh) {
  ThreadPool pool(2);
  auto w = WeightStore::load(model_path("tiny-qwen3", GgmlType::Q4_0), pool, LoadOptions{});
  const auto history = random_tokens(40, 5), turn_a = random_tokens(9, 6), turn_b = random_tokens(12, 7);
  SessionOptions so;
  so.n_ctx = 512;
  so.n_seq_max = 2;
  Session s(*w, pool, so);
  std::vector<Session::Row> rows;
  for (int32_t t : history) rows.push_back({1, t, false});
  for (int32_t t : turn_a) rows.push_back({1, t, false});
  std::vector<float> logits;
  s.eval_rows(rows, &logits);
  s.truncate(1, 40);  // keep the shared history, drop turn a
  rows.clear();
  for (int32_t t : turn_b) rows.push_back({1, t, true});
  s.eval_rows(rows, &logits);
  std::vector<int32_t> fresh = history;
  fresh.insert(fresh.end(), turn_b.begin(), turn_b.end());
  const Rows want = run_alone(*w, pool, fresh, {});
  const size_t v = static_cast<size_t>(w->config().n_vocab);
  for (size_t i = 0; i < turn_b.size(); ++i)
    ASSERT_EQ(0, std::memcmp(logits.data() + i * v, want[40 + i].data(), v * sizeof(float)))
        << "row " << i << " of the new turn";
}

// A server slot's next request (Session::clear): the first cache allocation stays (no new page
// faults per request) and the next sequence computes the bits of a fresh one; a cache grown past
// it is freed, so an idle slot never holds more than the first allocation.
TEST(SessionBatch, ClearedSequenceKeepsOnlyItsFirstCacheAndStartsFresh) {
  ThreadPool pool(2);
  auto w = WeightStore::load(model_path("tiny-qwen3", GgmlType::Q4_0), pool, LoadOptions{});
  SessionOptions so;
  so.n_ctx = 512;
  so.n_seq_max = 2;
  Session s(*w, pool, so);
  EXPECT_EQ(s.kv_bytes(), 0u);  // several sequences: nothing allocated before use
  auto feed = [&](const std::vector<int32_t>& tokens, bool logits_wanted) {
    std::vector<Session::Row> rows;
    for (int32_t t : tokens) rows.push_back({1, t, logits_wanted});
    std::vector<float> logits;
    s.eval_rows(rows, &logits);
    return logits;
  };
  feed(random_tokens(30, 8), false);
  const size_t first = s.kv_bytes();
  ASSERT_GT(first, 0u);
  s.clear(1);
  EXPECT_EQ(s.n_past(1), 0);
  EXPECT_EQ(s.kv_bytes(), first) << "the first allocation is kept";
  const auto prompt = random_tokens(20, 9);
  const std::vector<float> got = feed(prompt, true);
  const Rows want = run_alone(*w, pool, prompt, {});
  const size_t v = static_cast<size_t>(w->config().n_vocab);
  for (size_t i = 0; i < prompt.size(); ++i)
    ASSERT_EQ(0, std::memcmp(got.data() + i * v, want[i].data(), v * sizeof(float))) << "row " << i;
  feed(random_tokens(300, 10), false);  // 320 positions: the cache grew past 256
  ASSERT_GT(s.kv_bytes(), first);
  s.clear(1);
  EXPECT_EQ(s.kv_bytes(), 0u) << "a grown cache is freed";
}

TEST(SessionBatch, BudgetAndBadRowsAreRefusedBeforeAnythingRuns) {
  ThreadPool pool(1);
  auto w = WeightStore::load(model_path("tiny-qwen3", GgmlType::Q4_0), pool, LoadOptions{});
  SessionOptions so;
  so.n_ctx = 100;
  so.n_seq_max = 3;
  so.kv_budget = 150;
  Session s(*w, pool, so);
  std::vector<float> logits;
  std::vector<Session::Row> rows(90, Session::Row{0, 5, false});
  s.eval_rows(rows, &logits);
  std::vector<Session::Row> more(70, Session::Row{1, 5, false});
  EXPECT_THROW(s.eval_rows(more, &logits), Error);  // 90 + 70 > 150
  EXPECT_EQ(s.n_past(1), 0);
  EXPECT_EQ(s.kv_used(), 90);
  more.assign(11, Session::Row{0, 5, false});
  EXPECT_THROW(s.eval_rows(more, &logits), Error);  // sequence 0 past n_ctx = 100
  EXPECT_THROW(s.eval_rows(std::vector<Session::Row>{{3, 5, false}}, &logits), Error);  // no seq 3
  EXPECT_THROW(s.eval_rows(std::vector<Session::Row>{{1, 9999, false}}, &logits), Error);
  EXPECT_EQ(s.kv_used(), 90);
  s.truncate(0, 10);
  EXPECT_EQ(s.kv_used(), 10);
  s.eval_rows(std::vector<Session::Row>(60, Session::Row{1, 7, true}), &logits);
  EXPECT_EQ(logits.size(), 60u * static_cast<size_t>(w->config().n_vocab));
}

}  // namespace session_batch_test
}  // namespace
}  // namespace xtile
