// `xtile perplexity`: llama-perplexity's chunking and scoring on a model whose logits are known,
// the KL-divergence base file (llama-perplexity's layout, byte for byte; round trip; bad files),
// the same figures on every kernel tier, and the command line.
#include "model/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "cpu/cpu_caps.h"
#include "kernel_test_util.h"
#include "model/ftype.h"
#include "model/kl_divergence.h"
#include "model/kld_base_file.h"
#include "model/log_probs.h"
#include "model/quantize_model.h"
#include "model/session.h"
#include "model/weights.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace xtile {
namespace {
namespace perplexity_test {  // unity batches: CMakeLists.txt

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
T read_at(const std::vector<char>& bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A model whose logits are known: at every position the token after the current one (mod V)
// has logit ln 3 and every other token 0, so with V = 4 the next token has probability
// 3 / (3 + 3) = 1/2 when the text follows the rule and 1/6 when it does not. It records what it
// was given, to check the chunks, the BOS and the first scored position.
class KnownLogits final : public ChunkEvaluator {
 public:
  explicit KnownLogits(int64_t v) : v_(v) {}
  int64_t n_vocab() const override { return v_; }
  void eval_chunk(std::span<const int32_t> tokens, int64_t first,
                  const LogitRows& on_rows) override {
    inputs.emplace_back(tokens.begin(), tokens.end());
    firsts.push_back(first);
    // Hand the rows over one at a time, the last one (which predicts nothing) included.
    for (int64_t p = first; p < static_cast<int64_t>(tokens.size()); ++p) {
      std::vector<float> row(static_cast<size_t>(v_), 0.0f);
      row[static_cast<size_t>((tokens[static_cast<size_t>(p)] + 1) % v_)] = std::log(3.0f);
      on_rows(p, row);
    }
  }
  std::vector<std::vector<int32_t>> inputs;
  std::vector<int64_t> firsts;

 private:
  int64_t v_;
};

TEST(PerplexityPlan, CutsTheTextLikeLlamaPerplexity) {
  const ChunkPlan p = plan_chunks(1000, 128, -1);
  EXPECT_EQ(p.n_ctx, 128);
  EXPECT_EQ(p.n_chunk, 7);  // ⌊1000 / 128⌋, the tail is not scored
  EXPECT_EQ(p.first, 64);
  EXPECT_EQ(p.scored_per_chunk(), 63);  // logits rows 64..126 predict tokens 65..127
  EXPECT_EQ(plan_chunks(1000, 128, 3).n_chunk, 3);
  EXPECT_EQ(plan_chunks(1000, 128, 50).n_chunk, 7);
  EXPECT_EQ(plan_chunks(7, 3, -1).scored_per_chunk(), 1);

  const std::vector<int32_t> tokens = {1, 5, 6, 7, 8, 9, 10, 11};
  const ChunkPlan q = plan_chunks(8, 4, -1);
  EXPECT_EQ(chunk_input(tokens, q, 1, 1), (std::vector<int32_t>{1, 9, 10, 11}));
  EXPECT_EQ(chunk_input(tokens, q, 1, -1), (std::vector<int32_t>{8, 9, 10, 11}));
}

TEST(PerplexityPlan, TooShortATextIsAnErrorThatSaysWhatIsNeeded) {
  const std::string e = error_of([] { plan_chunks(255, 128, -1); });
  EXPECT_NE(e.find("only 255 tokens"), std::string::npos) << e;
  EXPECT_NE(e.find("at least 256"), std::string::npos) << e;
  EXPECT_NE(error_of([] { plan_chunks(100, 2, -1); }).find("at least 3"), std::string::npos);
}

// Two chunks of 6 (first = 3: rows 3 and 4 predict tokens 4 and 5 of each chunk):
//   chunk 1: 1 0 1 [2 3 1]  2->3 follows the rule (ln 2), 3->1 does not (ln 6)
//   chunk 2: 2 3 0 [1 2 3]  1->2 and 2->3 follow it (ln 2, ln 2)
// A 13th token is left over (no third chunk).
const std::vector<int32_t> kHandText = {1, 0, 1, 2, 3, 1, 2, 3, 0, 1, 2, 3, 0};

TEST(Perplexity, KnownLogitsGiveTheHandComputedFigures) {
  KnownLogits model(4);
  ThreadPool pool(2);
  PerplexityRequest req;
  req.tokens = kHandText;
  req.plan = plan_chunks(static_cast<int64_t>(kHandText.size()), 6, -1);
  req.bos = 1;
  std::vector<double> after_chunk;
  req.on_chunk = [&](const PerplexityState& s) { after_chunk.push_back(s.ppl()); };
  const PerplexityState s = compute_perplexity(model, pool, req);

  // Each chunk evaluated on its own, BOS in place of its first token, from position 3 on.
  ASSERT_EQ(model.inputs.size(), 2u);
  EXPECT_EQ(model.inputs[0], (std::vector<int32_t>{1, 0, 1, 2, 3, 1}));
  EXPECT_EQ(model.inputs[1], (std::vector<int32_t>{1, 3, 0, 1, 2, 3}));  // 2 -> BOS
  EXPECT_EQ(model.firsts, (std::vector<int64_t>{3, 3}));

  const double ln2 = std::log(2.0), ln6 = std::log(6.0);
  EXPECT_EQ(s.count, 4);
  EXPECT_NEAR(s.sum_nll, 3 * ln2 + ln6, 1e-6);
  ASSERT_EQ(after_chunk.size(), 2u);
  EXPECT_NEAR(after_chunk[0], std::sqrt(12.0), 1e-6);  // exp((ln 2 + ln 6) / 2)
  EXPECT_NEAR(s.ppl(), std::pow(48.0, 0.25), 1e-6);    // exp((3 ln 2 + ln 6) / 4)
  EXPECT_EQ(s.chunk_ppl, after_chunk);
  const double mean = (3 * ln2 + ln6) / 4;
  const double var = (3 * ln2 * ln2 + ln6 * ln6) / 4 - mean * mean;
  EXPECT_NEAR(s.ppl_error(), std::sqrt(var / 3) * std::pow(48.0, 0.25), 1e-6);
}

TEST(Perplexity, TheResultDoesNotDependOnTheThreadCount) {
  std::vector<int32_t> text;
  for (int i = 0; i < 300; ++i) text.push_back((i * i + 3 * i) % 7);
  KnownLogits model(7);
  PerplexityRequest req;
  req.tokens = text;
  req.plan = plan_chunks(300, 40, -1);
  ThreadPool one(1), three(3);
  const PerplexityState a = compute_perplexity(model, one, req);
  const PerplexityState b = compute_perplexity(model, three, req);
  EXPECT_EQ(std::memcmp(&a.sum_nll, &b.sum_nll, sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(&a.sum_nll2, &b.sum_nll2, sizeof(double)), 0);
}

// Hands over the logits of every position, the unscored first half included.
class AllRows final : public ChunkEvaluator {
 public:
  int64_t n_vocab() const override { return 4; }
  void eval_chunk(std::span<const int32_t> tokens, int64_t, const LogitRows& on_rows) override {
    on_rows(0, std::vector<float>(tokens.size() * 4, 0.0f));
  }
};

TEST(Perplexity, RowsOutsideTheScoredHalfAreAnError) {
  AllRows model;
  ThreadPool pool(1);
  PerplexityRequest req;
  req.tokens = kHandText;
  req.plan = plan_chunks(static_cast<int64_t>(kHandText.size()), 6, -1);
  const std::string e = error_of([&] { compute_perplexity(model, pool, req); });
  EXPECT_NE(e.find("positions 0 + 6 of a chunk of 6 (scored from 3)"), std::string::npos) << e;
}

TEST(LogProbs, TokenNllIsMinusTheLogSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -3.0f};
  double z = 0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  for (int t = 0; t < 4; ++t)
    EXPECT_NEAR(token_nll(logits, t), std::log(z) - logits[static_cast<size_t>(t)], 1e-6);
}

// llama-perplexity's base-file row, restated from its description: float max and min (the min
// raised to max − 16), a double sum of float exponentials, and codes rounded by adding
// 1.5 · 2^23 and keeping the low mantissa bits.
std::vector<uint16_t> llama_row(const std::vector<float>& logits) {
  const int n = static_cast<int>(logits.size());
  float mx = logits[0], mn = logits[0];
  for (float l : logits) {
    mx = l > mx ? l : mx;
    mn = l < mn ? l : mn;
  }
  mn = mn > mx - 16 ? mn : mx - 16;
  double sum = 0;
  for (float l : logits) sum += expf(l - mx);
  const float lse = static_cast<float>(log(sum));
  const float min_lp = mn - mx - lse;
  const float scale = (mx - mn) / 65535.f;
  std::vector<uint16_t> row(static_cast<size_t>(2 * ((n + 1) / 2) + 4), 0);
  std::memcpy(&row[0], &scale, 4);
  std::memcpy(&row[2], &min_lp, 4);
  if (scale != 0)
    for (int i = 0; i < n; ++i) {
      if (!(logits[static_cast<size_t>(i)] > mn)) continue;
      float v = (1 / scale) * (logits[static_cast<size_t>(i)] - mn) + 12582912.f;
      int32_t bits;
      std::memcpy(&bits, &v, 4);
      row[static_cast<size_t>(4 + i)] = static_cast<uint16_t>((bits & 0x007fffff) - 0x00400000);
    }
  return row;
}

TEST(KldBaseFile, RowEncodingIsLlamaPerplexitysBitForBit) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int n : {1, 2, 5, 512, 1001}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> logits(static_cast<size_t>(n));
      for (float& l : logits) l = normal(rng) * (trial % 3 == 0 ? 5.0f : 1.0f);
      if (trial == 1) std::fill(logits.begin(), logits.end(), 2.5f);  // flat: scale 0
      std::vector<uint16_t> ours(static_cast<size_t>(encoded_row_size(n)), 0xFFFF);
      encode_log_probs(logits, ours.data());
      EXPECT_EQ(ours, llama_row(logits)) << "n_vocab " << n << " trial " << trial;
    }
  }
}

TEST(KldBaseFile, LayoutIsLlamaPerplexitys) {
  // Vocabulary 5 (odd: one uint16 of padding per row), two chunks of 6: 2 rows per chunk.
  KnownLogits model(5);
  ThreadPool pool(1);
  const std::string path = test::temp_path("layout.kld").string();
  const std::vector<int32_t> text = {1, 2, 3, 4, 0, 1, 2, 2, 2, 2, 2, 2};
  PerplexityRequest req;
  req.tokens = text;
  req.plan = plan_chunks(12, 6, -1);
  KldBaseWriter writer(path, {6, 5, 2}, text);
  req.base_out = &writer;
  compute_perplexity(model, pool, req);
  writer.finish();

  const std::vector<char> b = read_bytes(path);
  const size_t nv = 2 * 3 + 4;  // 10 uint16 per row
  ASSERT_EQ(b.size(), 8 + 3 * 4 + 12 * 4 + 2 * 2 * nv * 2);
  EXPECT_EQ(std::string(b.data(), 8), "_logits_");
  EXPECT_EQ(read_at<int32_t>(b, 8), 6);   // n_ctx
  EXPECT_EQ(read_at<int32_t>(b, 12), 5);  // n_vocab
  EXPECT_EQ(read_at<int32_t>(b, 16), 2);  // n_chunk
  for (size_t i = 0; i < text.size(); ++i) EXPECT_EQ(read_at<int32_t>(b, 20 + 4 * i), text[i]);
  // Every row here is {ln 3 at one token, 0 elsewhere}: max ln 3, min 0, scale ln 3 / 65535,
  // min_log_prob = 0 − ln 3 − ln(1 + 4/3) = −ln 7, code 65535 for the favoured token, 0 for the
  // rest, and a zero pad. Row r of chunk c is logits row 3 + r, favouring input token + 1.
  const size_t rows = 20 + 12 * 4;
  for (int c = 0; c < 2; ++c)
    for (int r = 0; r < 2; ++r) {
      const size_t at = rows + (static_cast<size_t>(c * 2 + r) * nv) * 2;
      EXPECT_FLOAT_EQ(read_at<float>(b, at), std::log(3.0f) / 65535.f);
      EXPECT_NEAR(read_at<float>(b, at + 4), -std::log(7.0), 1e-6);
      const int favoured = (text[static_cast<size_t>(c * 6 + 3 + r)] + 1) % 5;
      for (int t = 0; t < 5; ++t)
        EXPECT_EQ(read_at<uint16_t>(b, at + 8 + 2 * static_cast<size_t>(t)),
                  t == favoured ? 65535 : 0)
            << "chunk " << c << " row " << r << " token " << t;
      EXPECT_EQ(read_at<uint16_t>(b, at + 8 + 10), 0);  // padding
    }
}

TEST(KldBaseFile, AModelAgainstItsOwnBaseIsExactlyZero) {
  KnownLogits model(5);
  ThreadPool pool(2);
  std::vector<int32_t> text;
  for (int i = 0; i < 400; ++i) text.push_back((i * 7 + i / 3) % 5);
  const std::string path = test::temp_path("self.kld").string();
  PerplexityRequest req;
  req.tokens = text;
  req.plan = plan_chunks(400, 50, -1);
  req.bos = 1;
  PerplexityState ppl;
  {
    KldBaseWriter writer(path, {50, 5, 8}, std::span<const int32_t>(text).first(400));
    req.base_out = &writer;
    ppl = compute_perplexity(model, pool, req);
    writer.finish();
  }
  KldBaseReader base(path);
  EXPECT_EQ(base.tokens(), text);
  KldRequest kr;
  kr.base = &base;
  kr.bos = 1;
  const KldState k = compute_kl_divergence(model, pool, kr);
  EXPECT_EQ(k.stats.count(), ppl.count);
  EXPECT_EQ(k.stats.kld().value, 0.0);
  EXPECT_EQ(k.stats.sorted_kld().back(), 0.0f);
  EXPECT_EQ(k.stats.sorted_kld().front(), 0.0f);
  EXPECT_EQ(k.stats.same_top().value, 1.0);
  EXPECT_EQ(k.stats.p_diff_rms().value, 0.0);
  EXPECT_EQ(k.stats.log_ppl_ratio().value, 0.0);
  EXPECT_EQ(k.stats.log_ppl_ratio().error, 0.0);
  // The base's decoded log-probabilities are within half a code of the exact ones.
  EXPECT_NEAR(k.stats.ppl_base().value, ppl.ppl(), 1e-3);
}

// Logits a little different from KnownLogits': the favoured token gets ln 2.
class OtherLogits final : public ChunkEvaluator {
 public:
  int64_t n_vocab() const override { return 5; }
  void eval_chunk(std::span<const int32_t> tokens, int64_t first,
                  const LogitRows& on_rows) override {
    for (int64_t p = first; p < static_cast<int64_t>(tokens.size()); ++p) {
      std::vector<float> row(5, 0.0f);
      row[static_cast<size_t>((tokens[static_cast<size_t>(p)] + 1) % 5)] = std::log(2.0f);
      on_rows(p, row);
    }
  }
};

TEST(KlDivergence, KnownDistributionsGiveTheirKlDivergence) {
  // base p = (3, 1, 1, 1, 1) / 7, model q = (2, 1, 1, 1, 1) / 6 on the favoured token first:
  // KL(p||q) = 3/7 ln((3/7)/(2/6)) + 4 · 1/7 ln((1/7)/(1/6)).
  KnownLogits base_model(5);
  OtherLogits model;
  ThreadPool pool(1);
  std::vector<int32_t> text;
  for (int i = 0; i < 120; ++i) text.push_back(i % 5);  // always the favoured token
  const std::string path = test::temp_path("known.kld").string();
  PerplexityRequest req;
  req.tokens = text;
  req.plan = plan_chunks(120, 20, -1);
  {
    KldBaseWriter writer(path, {20, 5, 6}, text);
    req.base_out = &writer;
    compute_perplexity(base_model, pool, req);
    writer.finish();
  }
  KldBaseReader base(path);
  KldRequest kr;
  kr.base = &base;
  const KldState k = compute_kl_divergence(model, pool, kr);
  const double p = 3.0 / 7, q = 2.0 / 6;
  const double want = p * std::log(p / q) + 4 * (1.0 / 7) * std::log((1.0 / 7) / (1.0 / 6));
  EXPECT_EQ(k.stats.count(), 6 * 9);
  EXPECT_NEAR(k.stats.kld().value, want, 1e-4);
  EXPECT_NEAR(k.stats.sorted_kld().back(), want, 1e-4);
  EXPECT_EQ(k.stats.same_top().value, 1.0);
  EXPECT_NEAR(k.stats.p_diff().value, q - p, 1e-4);  // Δp of the next token
  EXPECT_NEAR(k.stats.p_diff_rms().value, p - q, 1e-4);
  EXPECT_NEAR(k.stats.ppl().value, 1 / q, 1e-3);
  EXPECT_NEAR(k.stats.ppl_base().value, 1 / p, 1e-3);
}

TEST(KlDivergence, PercentilesInterpolateLikeLlamaPerplexity) {
  const std::vector<float> v = {0.0f, 1.0f, 2.0f, 3.0f, 10.0f};
  EXPECT_FLOAT_EQ(percentile(v, 0.5f), 2.0f);
  EXPECT_FLOAT_EQ(percentile(v, 0.9f), 7.2f);  // 0.9 · 4 = 3.6: 0.4 · 3 + 0.6 · 10
  EXPECT_FLOAT_EQ(percentile(v, 0.0f), 0.0f);
  EXPECT_FLOAT_EQ(percentile(v, 1.0f), 10.0f);
  EXPECT_FLOAT_EQ(median(v), 2.0f);
  EXPECT_FLOAT_EQ(median(std::vector<float>{1.0f, 2.0f, 4.0f, 8.0f}), 3.0f);
}

// A valid small base file (vocabulary 5, 2 chunks of 6) to corrupt.
std::string good_base(const std::string& name) {
  KnownLogits model(5);
  ThreadPool pool(1);
  const std::string path = test::temp_path(name).string();
  const std::vector<int32_t> text = {1, 2, 3, 4, 0, 1, 2, 2, 2, 2, 2, 2};
  PerplexityRequest req;
  req.tokens = text;
  req.plan = plan_chunks(12, 6, -1);
  KldBaseWriter writer(path, {6, 5, 2}, text);
  req.base_out = &writer;
  compute_perplexity(model, pool, req);
  writer.finish();
  return path;
}

TEST(KldBaseFile, BadFilesAreRejectedWithMessages) {
  const std::string good = good_base("good.kld");
  const std::vector<char> bytes = read_bytes(good);
  EXPECT_NO_THROW(KldBaseReader r(good));
  auto variant = [&](const std::string& name, const std::vector<char>& b) {
    const std::string p = test::temp_path(name).string();
    write_bytes(p, b);
    return error_of([&] { KldBaseReader r(p); });
  };
  auto expect_has = [](const std::string& e, const std::string& part) {
    EXPECT_NE(e.find(part), std::string::npos) << "'" << e << "' lacks '" << part << "'";
  };
  expect_has(error_of([] { KldBaseReader r("/nonexistent/base.kld"); }), "does not exist");
  expect_has(variant("empty.kld", {}), "not a llama-perplexity log-probability file");
  std::vector<char> b = bytes;
  b[0] = 'X';
  expect_has(variant("magic.kld", b), "not a llama-perplexity log-probability file");
  b = bytes;
  b.resize(b.size() - 3);
  const std::string truncated = variant("truncated.kld", b);
  expect_has(truncated, "truncated");
  expect_has(truncated, std::to_string(bytes.size()));  // the size the header needs
  b = bytes;
  b.resize(30);
  expect_has(variant("short.kld", b), "truncated");
  b = bytes;
  b.push_back(0);
  expect_has(variant("long.kld", b), "longer than its header says");
  b = bytes;
  const int32_t one = 1, big = 1 << 30, bad_token = 7;
  std::memcpy(b.data() + 8, &one, 4);
  expect_has(variant("ctx.kld", b), "bad context size 1");
  b = bytes;
  std::memcpy(b.data() + 16, &big, 4);  // 2^30 chunks: a size that must not wrap
  expect_has(variant("chunks.kld", b), "truncated");
  b = bytes;
  std::memcpy(b.data() + 20 + 4 * 3, &bad_token, 4);
  expect_has(variant("token.kld", b), "token 3 is 7, outside its vocabulary of 5");

  // Another model's vocabulary: an error before anything is evaluated.
  KldBaseReader base(good);
  KnownLogits model(4);
  ThreadPool pool(1);
  KldRequest kr;
  kr.base = &base;
  expect_has(error_of([&] { compute_kl_divergence(model, pool, kr); }), "vocabulary of 5");
  EXPECT_TRUE(model.inputs.empty());
}

TEST(KldBaseFile, AnUnfinishedWriterLeavesNoFile) {
  const std::string path = test::temp_path("unfinished.kld").string();
  {
    const std::vector<int32_t> text(12, 1);
    KldBaseWriter writer(path, {6, 5, 2}, text);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

// --- the real model ---------------------------------------------------------------------

// A TinyStories-like text repeated to `n` tokens of the model's vocabulary (BOS first when it
// adds one), and the BOS that starts every chunk (-1: none).
struct StoryTokens {
  std::vector<int32_t> ids;
  int32_t bos = -1;
};

StoryTokens story_tokens(const WeightStore& w, size_t n) {
  const auto tok = Tokenizer::from_gguf(w.file());
  StoryTokens t;
  t.bos = tok->add_bos() ? tok->bos() : -1;
  std::string text;
  while (true) {
    text +=
        "Once upon a time, there was a little girl named Lily. She loved to play in the "
        "park with her red ball. One day, she saw a big dog. The dog was sad. ";
    t.ids = tok->encode(text, true, false);
    if (t.ids.size() >= n) {
      t.ids.resize(n);
      return t;
    }
  }
}

struct LoadedModel {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<WeightStore> weights;
};

LoadedModel load(const std::string& path, Tier tier, int threads) {
  LoadedModel m;
  m.pool = std::make_unique<ThreadPool>(threads);
  LoadOptions lo;
  lo.tier = tier;
  m.weights = WeightStore::load(path, *m.pool, lo);
  return m;
}

TEST(PerplexityModel, SessionEvaluatorGivesTheLogitsOfOneWholeChunkBatch) {
  XTILE_REQUIRE_FIXTURE(path, "models/stories260K.gguf");
  LoadedModel m = load(path, Tier::ref, 2);
  const std::vector<int32_t> tokens = story_tokens(*m.weights, 40).ids;
  SessionOptions so;
  so.n_ctx = 40;
  so.n_batch = 7;  // the scored half in pieces of 7, the first half with one logits row
  Session session(*m.weights, *m.pool, so);
  SessionEvaluator eval(session);
  std::vector<float> got;
  int64_t next = 20;
  eval.eval_chunk(tokens, 20, [&](int64_t pos, std::span<const float> rows) {
    EXPECT_EQ(pos, next);
    next += static_cast<int64_t>(rows.size()) / eval.n_vocab();
    got.insert(got.end(), rows.begin(), rows.end());
  });
  EXPECT_EQ(next, 40);

  SessionOptions whole;
  whole.n_ctx = 40;
  Session one(*m.weights, *m.pool, whole);
  std::vector<float> all;
  one.eval(tokens, true, &all);
  const size_t v = static_cast<size_t>(eval.n_vocab());
  ASSERT_EQ(got.size(), 20 * v);
  EXPECT_EQ(std::memcmp(got.data(), all.data() + 20 * v, got.size() * sizeof(float)), 0);

  // A second chunk on the same evaluator starts from an empty cache again.
  std::vector<float> again;
  eval.eval_chunk(tokens, 20, [&](int64_t, std::span<const float> rows) {
    again.insert(again.end(), rows.begin(), rows.end());
  });
  EXPECT_EQ(again, got);
}

struct TierRun {
  PerplexityState ppl;
  std::vector<char> base;
  int32_t bos = -1;
};

TierRun run_tier(const std::string& model, Tier tier, int threads, const std::string& tag) {
  LoadedModel m = load(model, tier, threads);
  const StoryTokens story = story_tokens(*m.weights, 3 * 64 + 5);
  const std::vector<int32_t>& tokens = story.ids;
  SessionOptions so;
  so.n_ctx = 64;
  so.n_batch = 24;
  Session session(*m.weights, *m.pool, so);
  SessionEvaluator eval(session);
  PerplexityRequest req;
  req.tokens = tokens;
  req.plan = plan_chunks(static_cast<int64_t>(tokens.size()), 64, -1);
  req.bos = story.bos;
  const std::string path = test::temp_path("tier-" + tag + ".kld").string();
  KldBaseWriter writer(path, {64, static_cast<int32_t>(eval.n_vocab()), 3},
                       std::span<const int32_t>(tokens).first(3 * 64));
  req.base_out = &writer;
  TierRun r;
  r.ppl = compute_perplexity(eval, *m.pool, req);
  r.bos = story.bos;
  writer.finish();
  r.base = read_bytes(path);
  return r;
}

// Quantizes `f32_model` to llama-quantize's file type `ftype` (its matmuls then run on the
// tiers' kernels; F32 is the float path) and expects the same sums and base-file bytes from every
// tier that runs `types` (the quantized types of that file), with 1 and 2 threads.
void expect_same_bits_on_every_tier(const std::string& f32_model, const std::string& name,
                                    const char* ftype, std::initializer_list<GgmlType> types) {
  const std::string file = test::temp_path(name + "-" + ftype + ".gguf").string();
  ThreadPool qpool(2);
  quantize_model(f32_model, file, ftype_by_name(ftype), qpool);
  const TierRun want = run_tier(file, Tier::ref, 1, name + "-ref-1");
  EXPECT_TRUE(std::isfinite(want.ppl.ppl()));
  EXPECT_GT(want.ppl.ppl(), 1.0);
  std::string skipped;
  for (Tier tier : {Tier::ref, Tier::avx2, Tier::avx512, Tier::amx, Tier::amx_emu}) {
    std::string why;
    for (GgmlType t : types)
      if (why.empty()) why = test::tier_unavailable(tier, t);
    if (!why.empty()) {
      skipped += std::string(tier_name(tier)) + ": " + why + "; ";
      continue;
    }
    for (int threads : {1, 2}) {
      if (tier == Tier::ref && threads == 1) continue;
      const std::string tag =
          name + "-" + std::string(tier_name(tier)) + "-" + std::to_string(threads);
      const TierRun got = run_tier(file, tier, threads, tag);
      EXPECT_EQ(std::memcmp(&got.ppl.sum_nll, &want.ppl.sum_nll, sizeof(double)), 0) << tag;
      EXPECT_EQ(got.ppl.chunk_ppl, want.ppl.chunk_ppl) << tag;
      EXPECT_TRUE(got.base == want.base) << tag << ": base files differ";
    }
  }
  if (!skipped.empty()) std::cout << "[ note     ] tiers skipped: " << skipped << "\n";
}

TEST(PerplexityModel, EveryTierAndThreadCountGivesTheSameBits) {
  XTILE_REQUIRE_FIXTURE(f32, "models/stories260K.gguf");
  expect_same_bits_on_every_tier(f32, "stories260K", "q8_0", {GgmlType::Q8_0});
}

TEST(PerplexityModel, MixedTypesGiveTheSameBitsOnEveryTier) {
  XTILE_REQUIRE_FIXTURE(f32, "models/stories260K.gguf");
  // stories260K's rows (64) are too short for K-quants: its "Q4_K_M" is llama-quantize's
  // fallback mix of Q5_0, Q8_0 and F16.
  expect_same_bits_on_every_tier(f32, "stories260K", "q4_k_m", {GgmlType::Q5_0, GgmlType::Q8_0});
}

TEST(PerplexityModel, MoeModelGivesTheSameBitsOnEveryTier) {
  XTILE_REQUIRE_FIXTURE(f32, "models/micro-qwen3moe.gguf");
  expect_same_bits_on_every_tier(f32, "micro-qwen3moe", "q8_0", {GgmlType::Q8_0});
}

TEST(PerplexityModel, Stories260KAgainstItsOwnBaseIsZeroAndQ8_0IsNot) {
  XTILE_REQUIRE_FIXTURE(f32, "models/stories260K.gguf");
  const TierRun base_run = run_tier(f32, Tier::ref, 2, "f32");
  const std::string base_path = test::temp_path("tier-f32.kld").string();  // run_tier's
  const std::string q8 = test::temp_path("stories260K-q8_0.gguf").string();
  ThreadPool qpool(2);
  quantize_model(f32, q8, GgmlType::Q8_0, qpool);
  auto compare = [&](const std::string& model) {
    LoadedModel m = load(model, cpu_caps().best_tier(), 2);
    SessionOptions so;
    so.n_ctx = 64;
    Session session(*m.weights, *m.pool, so);
    SessionEvaluator eval(session);
    KldBaseReader base(base_path);
    KldRequest kr;
    kr.base = &base;
    kr.bos = base_run.bos;
    return compute_kl_divergence(eval, *m.pool, kr);
  };
  const KldState self = compare(f32);
  EXPECT_EQ(self.stats.count(), 3 * 31);
  EXPECT_EQ(self.stats.kld().value, 0.0);
  EXPECT_EQ(self.stats.sorted_kld().back(), 0.0f);
  EXPECT_EQ(self.stats.same_top().value, 1.0);
  EXPECT_EQ(self.stats.p_diff_rms().value, 0.0);
  EXPECT_NEAR(self.stats.ppl().value, base_run.ppl.ppl(), 1e-3 * base_run.ppl.ppl());

  const KldState q = compare(q8);
  EXPECT_GT(q.stats.kld().value, 0.0);
  EXPECT_LT(q.stats.kld().value, 0.05);  // Q8_0 is close to F32
  EXPECT_GT(q.stats.same_top().value, 0.8);
}

// --- the command line -------------------------------------------------------------------

struct Cli {
  int status;
  std::string output;
};

// The command line `'<xtile>' args`, built by appending (GCC 12 warns, wrongly, of an
// overlapping memcpy for "'" + std::string temporary).
std::string command(const std::string& args) {
  std::string cmd = "'";
  cmd += test::xtile_binary();
  cmd += "' ";
  cmd += args;
  return cmd;
}

Cli xtile(const std::string& args) {
  Cli r;
  r.status = test::run_command(command(args), &r.output);
  return r;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string story_file() {
  const std::string path = test::temp_path("story.txt").string();
  std::ofstream out(path);
  for (int i = 0; i < 30; ++i)
    out << "Once upon a time, there was a little girl named Lily. She loved to play in the park "
           "with her red ball. One day, she saw a big dog near the tree. The dog was sad.\n";
  return path;
}

TEST(PerplexityCli, PrintsLlamaPerplexitysLinesAndJson) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  const std::string text = story_file();
  const std::string common = "perplexity -m '" + model + "' -f '" + text + "' -c 64 -t 2 ";
  const Cli r = xtile(common + "--chunks 3");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "[1]")) << r.output;
  EXPECT_TRUE(contains(r.output, ",[3]")) << r.output;
  EXPECT_FALSE(contains(r.output, "[4]")) << r.output;
  EXPECT_TRUE(contains(r.output, "Final estimate: PPL = ")) << r.output;
  EXPECT_TRUE(contains(r.output, " +/- ")) << r.output;

  std::string json;
  // In a subshell: run_command sends stderr to the output, the JSON alone is wanted here.
  ASSERT_EQ(
      test::run_command("(" + command(common + "--chunks 3 -o json 2>/dev/null") + ")", &json), 0);
  const nlohmann::json j = nlohmann::json::parse(json);
  EXPECT_EQ(j["n_chunk"], 3);
  EXPECT_EQ(j["n_ctx"], 64);
  EXPECT_EQ(j["scored_tokens"], 3 * 31);
  EXPECT_EQ(j["chunk_ppl"].size(), 3u);
  const double ppl = j["ppl"];
  EXPECT_TRUE(contains(
      r.output, "PPL = " +
                    [&] {
                      char buf[32];
                      std::snprintf(buf, sizeof(buf), "%.4f", ppl);
                      return std::string(buf);
                    }()))
      << r.output;
}

TEST(PerplexityCli, BaseThenKlDivergenceOfTheSameModelIsZero) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  const std::string text = story_file();
  const std::string base = test::temp_path("cli.kld").string();
  const std::string m = "perplexity -m '" + model + "' ";
  Cli r = xtile(m + "-f '" + text + "' -c 64 --chunks 4 --kl-divergence-base '" + base + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "wrote KL-divergence base")) << r.output;
  r = xtile(m + "--kl-divergence --kl-divergence-base '" + base + "' --kernels ref");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "chunk             PPL")) << r.output;
  EXPECT_TRUE(contains(r.output, "Mean    KLD:   0.000000 ±   0.000000")) << r.output;
  EXPECT_TRUE(contains(r.output, "Maximum KLD:   0.000000")) << r.output;
  EXPECT_TRUE(contains(r.output, "Same top p: 100.000 ± 0.000 %")) << r.output;
  EXPECT_TRUE(contains(r.output, "Mean ln(PPL(Q)/PPL(base))     :   0.000000 ±   0.000000"))
      << r.output;

  // The same text with -f is accepted; a context different from the base's is not.
  r = xtile(m + "--kl-divergence --kl-divergence-base '" + base + "' -f '" + text + "'");
  EXPECT_EQ(r.status, 0) << r.output;
  r = xtile(m + "--kl-divergence --kl-divergence-base '" + base + "' -c 128");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "computed with a context of 64")) << r.output;
  r = xtile(m + "--kl-divergence");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "--kl-divergence needs --kl-divergence-base")) << r.output;
}

TEST(PerplexityCli, ATooShortTextIsAnError) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  const std::string text = test::temp_path("short.txt").string();
  std::ofstream(text) << "Once upon a time.\n";
  const Cli r = xtile("perplexity -m '" + model + "' -f '" + text + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "needs at least 1024")) << r.output;
}

}  // namespace perplexity_test
}  // namespace
}  // namespace xtile
