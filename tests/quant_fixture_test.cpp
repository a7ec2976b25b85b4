// The GGUF files of ../shared/fixtures/quant, made by llama.cpp's own llama-quantize, each with
// llama.cpp's logits and a float64 oracle (the exact math over ggml's dequantized weights):
//   - every fixture loads and its logits meet the README's bar against the oracle, computed here
//     from the files (dense: rms/sd ≤ llama.cpp's × 1.1 + 0.002; MoE: the mean over the MoE
//     fixtures ≤ llama.cpp's mean × 1.25);
//   - its logits are the same bytes on every tier and with 1, 2 and 4 threads;
//   - the dequantizers themselves: with every matrix dequantized to f32 and f32 activations and
//     cache, the logits are within float32 rounding of the oracle (a wrong bit anywhere in a
//     block format moves them by orders of magnitude more).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "model/session.h"
#include "model/weights.h"
#include "model_test_util.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace quant_fixture_test {  // unity batches: CMakeLists.txt

namespace fs = std::filesystem;

// The fixture names (NAME.gguf), sorted; empty when ../shared is absent.
std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  const std::string dir = test::fixture_path("quant");
  if (dir.empty() || !fs::is_directory(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".gguf") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string quant_path(const std::string& name, const std::string& ext) {
  return test::fixture_path("quant/" + name + ext);
}

std::vector<int32_t> prompt_ids() {
  return test::parse_id_list(test::read_text(test::fixture_path("quant/prompt-ids.txt")));
}

// The oracle's rows for the prompt positions (its file has one more: the greedy next token).
std::vector<test::LogitsRow> read_oracle(const std::string& name) {
  auto rows = test::read_logits_tsv(test::fixture_path("quant/" + name + ".oracle.tsv"));
  rows.resize(std::min(rows.size(), prompt_ids().size()));
  return rows;
}

LoadOptions load_options(Tier tier, bool dequantize = false) {
  LoadOptions o;
  o.tier = tier;
  o.dequantize = dequantize;
  return o;
}

bool is_moe(const std::string& name) { return name.rfind("mini-qwen3moe", 0) == 0; }

// Logits of every prompt position, one batch, from a fresh session.
std::vector<float> prompt_logits(const WeightStore& w, ThreadPool& pool, KvType kv) {
  const std::vector<int32_t> ids = prompt_ids();
  Session s(w, pool, SessionOptions{.n_ctx = 64, .kv_type = kv});
  std::vector<float> logits;
  s.eval(ids, true, &logits);
  return logits;
}

// Mean over positions of RMS(got − oracle) / SD(oracle) (the README's rms/sd), and the share of
// positions where the argmax agrees.
struct Distance {
  double rms_sd = 0;
  double top1 = 0;
};

Distance distance(const std::vector<float>& got, const std::vector<test::LogitsRow>& oracle) {
  Distance d;
  for (size_t p = 0; p < oracle.size(); ++p) {
    const std::vector<double>& o = oracle[p].logits;
    const size_t v = o.size();
    double mean = 0, err = 0;
    for (double x : o) mean += x;
    mean /= static_cast<double>(v);
    double var = 0;
    size_t arg_got = 0, arg_o = 0;
    for (size_t i = 0; i < v; ++i) {
      const double g = got[p * v + i];
      var += (o[i] - mean) * (o[i] - mean);
      err += (g - o[i]) * (g - o[i]);
      if (g > got[p * v + arg_got]) arg_got = i;
      if (o[i] > o[arg_o]) arg_o = i;
    }
    d.rms_sd += std::sqrt(err / static_cast<double>(v)) / std::sqrt(var / static_cast<double>(v));
    d.top1 += arg_got == arg_o ? 1.0 : 0.0;
  }
  d.rms_sd /= static_cast<double>(oracle.size());
  d.top1 /= static_cast<double>(oracle.size());
  return d;
}

std::vector<float> flatten(const std::vector<test::LogitsRow>& rows) {
  std::vector<float> out;
  for (const auto& r : rows)
    for (double x : r.logits) out.push_back(static_cast<float>(x));
  return out;
}

class QuantFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam().empty()) GTEST_SKIP() << "../shared/fixtures/quant is absent";
  }
  std::string gguf() const { return quant_path(GetParam(), ".gguf"); }
};

TEST_P(QuantFixture, MeetsTheBarAgainstTheOracle) {
  ThreadPool pool(2);
  auto w = WeightStore::load(gguf(), pool, load_options(Tier::ref));
  const auto oracle = read_oracle(GetParam());
  const auto llama = test::read_logits_tsv(quant_path(GetParam(), ".llama.tsv"));
  ASSERT_EQ(oracle.size(), prompt_ids().size());
  const Distance ours = distance(prompt_logits(*w, pool, KvType::f16), oracle);
  const Distance theirs = distance(flatten(llama), oracle);
  std::printf("[fixture] %s xtile rms/sd %.5f top1 %.3f | llama.cpp rms/sd %.5f top1 %.3f\n",
              GetParam().c_str(), ours.rms_sd, ours.top1, theirs.rms_sd, theirs.top1);
  if (is_moe(GetParam())) return;  // judged together below (an expert flip moves a position)
  EXPECT_LE(ours.rms_sd, theirs.rms_sd * 1.1 + 0.002) << "llama.cpp: " << theirs.rms_sd;
}

TEST_P(QuantFixture, SameBytesOnEveryTierAndThreadCount) {
  ThreadPool one(1);
  auto ref = WeightStore::load(gguf(), one, load_options(Tier::ref));
  const std::vector<float> want = prompt_logits(*ref, one, KvType::f16);
  std::string skipped;
  for (Tier tier : {Tier::avx2, Tier::avx512, Tier::amx, Tier::amx_emu}) {
    const std::string why = cpu_caps().tier_unavailable_reason(tier);
    if (!why.empty()) {
      skipped += std::string(tier_name(tier)) + " (" + why + ") ";
      continue;
    }
    for (int threads : {1, 2, 4}) {
      ThreadPool pool(threads);
      auto w = WeightStore::load(gguf(), pool, load_options(tier));
      const std::vector<float> got = prompt_logits(*w, pool, KvType::f16);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
          << GetParam() << " on " << tier_name(tier) << " with " << threads << " threads";
    }
  }
  if (!skipped.empty()) std::printf("[fixture] tiers not run on this CPU: %s\n", skipped.c_str());
}

TEST_P(QuantFixture, DequantizedWeightsReproduceTheOracle) {
  ThreadPool pool(2);
  auto w = WeightStore::load(gguf(), pool, load_options(Tier::ref, true));
  const auto oracle = read_oracle(GetParam());
  const Distance d = distance(prompt_logits(*w, pool, KvType::f32), oracle);
  std::printf("[fixture] %s dequantized f32 path rms/sd %.2e\n", GetParam().c_str(), d.rms_sd);
  // float32 arithmetic against float64: ~1e-6 here; a misread bit of a block format gives
  // errors of the order of the weights themselves (rms/sd ~0.1-1).
  EXPECT_LT(d.rms_sd, 1e-4);
  EXPECT_EQ(d.top1, 1.0);
}

std::vector<std::string> params() {
  std::vector<std::string> names = fixture_names();
  if (names.empty()) names.push_back("");  // one case that skips with the reason
  return names;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QuantFixture, ::testing::ValuesIn(params()),
                         [](const auto& info) {
                           std::string n = info.param.empty() ? "absent" : info.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// The MoE fixtures judged together: an expert choice can flip on a tiny difference, in either
// engine, and move a position's logits a lot.
TEST(QuantFixtureMoe, MeanDistanceWithinTheBar) {
  std::vector<std::string> moe;
  for (const std::string& n : fixture_names())
    if (is_moe(n) && n.find("f16") == std::string::npos) moe.push_back(n);
  if (moe.empty()) GTEST_SKIP() << "../shared/fixtures/quant is absent";
  ThreadPool pool(2);
  double ours = 0, theirs = 0;
  for (const std::string& n : moe) {
    auto w = WeightStore::load(quant_path(n, ".gguf"), pool, load_options(Tier::ref));
    const auto oracle = read_oracle(n);
    ours += distance(prompt_logits(*w, pool, KvType::f16), oracle).rms_sd;
    theirs += distance(flatten(test::read_logits_tsv(quant_path(n, ".llama.tsv"))), oracle).rms_sd;
  }
  ours /= static_cast<double>(moe.size());
  theirs /= static_cast<double>(moe.size());
  std::printf("[fixture] MoE mean rms/sd: xtile %.5f, llama.cpp %.5f\n", ours, theirs);
  EXPECT_LE(ours, theirs * 1.25);
}

}  // namespace quant_fixture_test
}  // namespace
}  // namespace xtile
