// End to end: the forward pass against float64 references of real and random F32 models
// (fixtures), and bit-exactness of quantized models across kernel tiers, thread counts and
// batch sizes (DESIGN.md §3.5), plus the run command's errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "base/error.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/registry.h"
#include "model/generate.h"
#include "model/quantize_model.h"
#include "model/session.h"
#include "model/synth.h"
#include "model/weights.h"
#include "model_test_util.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace model_test {  // unity batches: CMakeLists.txt

using test::expect_identical;
using test::expect_logits_near;
using test::GreedyRun;
using test::kOnceUponATime;
using test::parse_id_list;
using test::read_logits_tsv;
using test::read_text;
using test::run_greedy;

// stories260K.greedy-reference.txt: the line after "[token_ids]".
std::vector<int32_t> read_stories_greedy(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("[token_ids]", 0) == 0 && std::getline(in, line)) return parse_id_list(line);
  return {};
}

TEST(ModelTest, Stories260KGreedyReproducesTheReference) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  XTILE_REQUIRE_FIXTURE(ref_path, "models/stories260K.greedy-reference.txt");
  const std::vector<int32_t> ref = read_stories_greedy(ref_path);
  ASSERT_EQ(ref.size(), 257u);
  ThreadPool pool(2);
  auto w = WeightStore::load(model, pool, LoadOptions{});
  SessionOptions so;
  so.n_ctx = 512;
  Session s(*w, pool, so);
  GenerateOptions go;
  go.n_predict = 256;
  const GenerateResult r = generate(s, std::vector<int32_t>{1}, go);
  std::vector<int32_t> ids = {1};
  ids.insert(ids.end(), r.tokens.begin(), r.tokens.end());
  EXPECT_EQ(ids, ref);
}

TEST(ModelTest, Stories260KLogitsMatchTheFloat64Reference) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  XTILE_REQUIRE_FIXTURE(ref_path, "models/stories260K.logits-once-upon-a-time.tsv");
  const auto ref = read_logits_tsv(ref_path);
  ASSERT_EQ(ref.size(), 5u);
  ThreadPool pool(2);
  auto w = WeightStore::load(model, pool, LoadOptions{});
  // f32 KV cache: see MicroModelTest.
  Session s(*w, pool, SessionOptions{.kv_type = KvType::f32});
  std::vector<float> logits;
  s.eval(kOnceUponATime, true, &logits);
  std::vector<std::vector<float>> rows;
  for (size_t p = 0; p < 5; ++p) {
    rows.emplace_back(logits.begin() + static_cast<long>(p * 512),
                      logits.begin() + static_cast<long>((p + 1) * 512));
    EXPECT_EQ(ref[p].token, kOnceUponATime[p]);
  }
  expect_logits_near(rows, ref, 1e-3);
}

class MicroModelTest : public ::testing::TestWithParam<const char*> {};

TEST_P(MicroModelTest, GreedyIdsAndLogitsMatchTheReference) {
  const std::string name = GetParam();
  XTILE_REQUIRE_FIXTURE(model, "models/" + name + ".gguf");
  XTILE_REQUIRE_FIXTURE(greedy_path, "models/" + name + ".greedy.txt");
  XTILE_REQUIRE_FIXTURE(tsv_path, "models/" + name + ".reference.tsv");
  const std::vector<int32_t> greedy = parse_id_list(read_text(greedy_path));
  const auto ref = read_logits_tsv(tsv_path);
  ASSERT_EQ(greedy.size(), 29u);
  ASSERT_EQ(ref.size(), 29u);
  ThreadPool pool(2);
  auto w = WeightStore::load(model, pool, LoadOptions{});
  // The float64 reference keeps K and V exact: compare logits with an f32 KV cache (the fp16
  // cache's rounding alone moves logits by up to ~1e-2 on these random weights).
  const GreedyRun r = run_greedy(*w, pool, kOnceUponATime, 24, 512, KvType::f32);
  std::vector<int32_t> ids = kOnceUponATime;
  ids.insert(ids.end(), r.generated.begin(), r.generated.end());
  EXPECT_EQ(ids, greedy);
  for (size_t p = 0; p < ref.size(); ++p) EXPECT_EQ(ref[p].token, greedy[p]) << "position " << p;
  expect_logits_near(r.logits, ref, 1e-3);
  // With the default fp16 cache (as llama.cpp) the greedy ids are the same.
  const GreedyRun r16 = run_greedy(*w, pool, kOnceUponATime, 24);
  EXPECT_EQ(r16.generated, r.generated) << "fp16 KV cache";

  // The same 29 tokens teacher-forced in one batch: the bits of every row are those of the
  // prompt-then-one-at-a-time run (batch invariance of the float path).
  test::expect_one_batch_matches(*w, pool, greedy, r);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MicroModelTest,
                         ::testing::Values("micro-llama", "micro-qwen2", "micro-qwen3"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

// ---- Synthetic quantized models: bit-exact across tiers, threads and batch sizes ----

// A tiny synthetic model (xtile synth's preset), written once per (preset, type) per process.
std::string synth_model(const std::string& preset, GgmlType type) {
  const std::string path =
      test::temp_path(preset + "-" + std::string(ggml_type_name(type)) + ".gguf").string();
  if (!std::ifstream(path).good()) {
    synth::Options o;
    o.preset = preset;
    o.type = type;
    o.seed = 7;
    synth::write_model(o, path);
  }
  return path;
}

using test::tier_unavailable;

struct ExactCase {
  const char* preset;
  GgmlType type;
};

constexpr Tier kAllTiers[] = {Tier::ref, Tier::avx2, Tier::avx512, Tier::amx, Tier::amx_emu};

// Prompt of 20 tokens (so that batch 7 splits it unevenly) then 8 greedy tokens.
GreedyRun run_case(const std::string& path, Tier tier, int threads, int64_t batch,
                   bool fuse = true) {
  ThreadPool pool(threads);
  LoadOptions lo;
  lo.tier = tier;
  lo.fuse = fuse;
  auto w = WeightStore::load(path, pool, lo);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 20; ++i) prompt.push_back((i * 37 + 11) % 500);
  return run_greedy(*w, pool, prompt, 8, batch);
}

// The ref tier's run on one thread in one batch: what every tier, thread count and batch size
// must reproduce. Computed once per file per process (each tier is its own test case).
const GreedyRun& ref_run(const std::string& path) {
  static std::map<std::string, GreedyRun> runs;
  auto it = runs.find(path);
  if (it == runs.end()) it = runs.emplace(path, run_case(path, Tier::ref, 1, 512)).first;
  return it->second;
}

std::string tier_param_name(Tier t) {
  std::string s(tier_name(t));
  for (char& ch : s)
    if (ch == '-') ch = '_';
  return s;
}

class QuantizedExactTest : public ::testing::TestWithParam<std::tuple<ExactCase, Tier>> {};

TEST_P(QuantizedExactTest, TokensAndLogitsAreBitIdenticalToRefAcrossThreadsAndBatches) {
  const auto [c, tier] = GetParam();
  const std::string why = tier_unavailable(tier, c.type);
  if (!why.empty()) GTEST_SKIP() << "tier " << tier_name(tier) << " is not available: " << why;
  const std::string path = synth_model(c.preset, c.type);
  const GreedyRun& base = ref_run(path);
  ASSERT_EQ(base.logits.size(), 28u);
  for (const auto& row : base.logits)
    for (float x : row) ASSERT_TRUE(std::isfinite(x));
  for (int threads : {1, 2, 3})
    for (int64_t batch : {1, 7, 512}) {
      if (tier == Tier::ref && threads == 1 && batch == 512) continue;  // the base itself
      expect_identical(run_case(path, tier, threads, batch), base,
                       std::string(tier_name(tier)) + " -t " + std::to_string(threads) + " -b " +
                           std::to_string(batch));
    }
}

TEST_P(QuantizedExactTest, FusedAndSeparateMatricesGiveTheSameBits) {
  const auto [c, tier] = GetParam();
  const std::string why = tier_unavailable(tier, c.type);
  if (!why.empty()) GTEST_SKIP() << "tier " << tier_name(tier) << " is not available: " << why;
  const std::string path = synth_model(c.preset, c.type);
  expect_identical(run_case(path, tier, 2, 512, false), run_case(path, tier, 2, 512, true),
                   "unfused vs fused on " + std::string(tier_name(tier)));
}

INSTANTIATE_TEST_SUITE_P(
    Synth, QuantizedExactTest,
    ::testing::Combine(::testing::Values(ExactCase{"tiny-llama", GgmlType::Q8_0},
                                         ExactCase{"tiny-llama", GgmlType::Q4_0},
                                         ExactCase{"tiny-qwen2", GgmlType::Q8_0},
                                         ExactCase{"tiny-qwen2", GgmlType::Q4_0},
                                         ExactCase{"tiny-qwen3", GgmlType::Q8_0},
                                         ExactCase{"tiny-qwen3", GgmlType::Q4_0}),
                       ::testing::ValuesIn(kAllTiers)),
    [](const auto& info) {
      const ExactCase& c = std::get<0>(info.param);
      std::string s = std::string(c.preset) + "_" + std::string(ggml_type_name(c.type));
      for (char& ch : s)
        if (ch == '-') ch = '_';
      return s + "_" + tier_param_name(std::get<1>(info.param));
    });

// A real model quantized by xtile quantize's rules: ffn_down (K = 172) stays F32, so each layer
// mixes packed matrices with the float path; still bit-identical across tiers and threads.
class QuantizedStoriesTest : public ::testing::TestWithParam<std::tuple<GgmlType, Tier>> {};

TEST_P(QuantizedStoriesTest, MixesFloatAndPackedAndStaysBitExact) {
  XTILE_REQUIRE_FIXTURE(src, "models/stories260K.gguf");
  const auto [type, tier] = GetParam();
  const std::string why = tier_unavailable(tier, type);
  if (!why.empty()) GTEST_SKIP() << "tier " << tier_name(tier) << " is not available: " << why;
  const std::string path =
      test::temp_path("stories-" + std::string(ggml_type_name(type)) + ".gguf").string();
  static std::set<std::string> quantized;  // once per file per process
  if (quantized.insert(path).second) {
    {
      ThreadPool pool(2);
      quantize_model(src, path, type, pool);
    }
    ThreadPool pool(1);
    auto w = WeightStore::load(path, pool, LoadOptions{});
    const LayerWeights& l = w->layer(0);
    EXPECT_TRUE(l.gate_up.parts[0].packed);
    EXPECT_FALSE(l.down.parts[0].packed) << "ffn_down has K = 172: float path";
  }
  const GreedyRun& base = ref_run(path);
  for (int threads : {1, 3})
    expect_identical(run_case(path, tier, threads, 7), base,
                     std::string(ggml_type_name(type)) + " " + std::string(tier_name(tier)) +
                         " -t " + std::to_string(threads));
}

INSTANTIATE_TEST_SUITE_P(Stories, QuantizedStoriesTest,
                         ::testing::Combine(::testing::Values(GgmlType::Q8_0, GgmlType::Q4_0),
                                            ::testing::ValuesIn(kAllTiers)),
                         [](const auto& info) {
                           return std::string(ggml_type_name(std::get<0>(info.param))) + "_" +
                                  tier_param_name(std::get<1>(info.param));
                         });

TEST(ModelTest, GenerationRepacksNothing) {
  const std::string path = synth_model("tiny-qwen3", GgmlType::Q4_0);  // tied output
  ThreadPool pool(2);
  const uint64_t before = repack_count();
  auto w = WeightStore::load(path, pool, LoadOptions{});
  // 2 layers × (q, k, v, o, gate, up, down) + token_embd as the tied output matrix.
  EXPECT_EQ(repack_count() - before, 2u * 7u + 1u);
  EXPECT_EQ(w->stats().repacks, 15u);
  const uint64_t loaded = repack_count();
  run_greedy(*w, pool, {1, 2, 3, 4, 5}, 16);
  EXPECT_EQ(repack_count(), loaded) << "a generation repacked weights";
}

// ---- Errors ----

TEST(ModelTest, PromptLongerThanTheContextIsAnError) {
  XTILE_REQUIRE_FIXTURE(model, "models/micro-llama.gguf");
  ThreadPool pool(1);
  auto w = WeightStore::load(model, pool, LoadOptions{});
  Session s(*w, pool, SessionOptions{.n_ctx = 8});
  try {
    generate(s, std::vector<int32_t>(9, 1), GenerateOptions{});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than the context size 8"), std::string::npos)
        << e.what();
  }
  GenerateOptions go;
  go.n_predict = 5;
  try {
    generate(s, std::vector<int32_t>(4, 1), go);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("-n 5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("context size 8"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.n_past(), 0) << "nothing may be evaluated before the error";
  std::vector<float> logits;
  EXPECT_THROW(s.eval(std::vector<int32_t>{1, 512}, false, &logits), Error);  // id >= vocab
}

TEST(ModelTest, UnreadableModelFileIsAnError) {
  ThreadPool pool(1);
  try {
    WeightStore::load("/nonexistent/model.gguf", pool, LoadOptions{});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
}

// ---- xtile run ----

std::string run_xtile(const std::string& args, int* rc) {
  std::string out;
  *rc = test::run_command(test::xtile_binary() + " run " + args, &out);
  return out;
}

TEST(ModelCliTest, RunPrintsTheGreedyIdsOfTheReference) {
  XTILE_REQUIRE_FIXTURE(model, "models/micro-qwen3.gguf");
  XTILE_REQUIRE_FIXTURE(greedy_path, "models/micro-qwen3.greedy.txt");
  std::string expected = read_text(greedy_path);
  while (!expected.empty() && expected.back() == '\n') expected.pop_back();
  for (const char* extra : {"-t 1", "-t 3 -b 2", "-t 2 --kernels ref"}) {
    std::string out;
    // stdout only: run_command merges stderr (the timings) into the output otherwise.
    const int rc = test::run_command("(" + test::xtile_binary() + " run -m " + model +
                                         " --prompt-ids 1,403,407,261,378 -n 24 --ids " + extra +
                                         " 2>/dev/null)",
                                     &out);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_EQ(out, expected + "\n") << extra;
  }
}

TEST(ModelCliTest, RunTokenizesATextPromptWithBos) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  std::string out;
  const int rc = test::run_command("(" + test::xtile_binary() + " run -m " + model +
                                       " -p 'Once upon a time' -n 3 --ids 2>/dev/null)",
                                   &out);
  EXPECT_EQ(rc, 0) << out;
  // The same ids as the greedy reference from BOS: the prompt, then ", there was".
  EXPECT_EQ(out, "1,403,407,261,378,432,383,286\n");
}

// -l/--logit-bias: the greedy continuation ", there was" (432, 383, 286) with 286 banned keeps
// the first two tokens and changes the third; a +inf boost makes every token that one.
TEST(ModelCliTest, RunLogitBiasBansAndForcesTokens) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  const auto ids = [&](const std::string& flags) {
    std::string out;
    const int rc =
        test::run_command("(" + test::xtile_binary() + " run -m " + model +
                              " -p 'Once upon a time' -n 3 --ids " + flags + " 2>/dev/null)",
                          &out);
    EXPECT_EQ(rc, 0) << flags << "\n" << out;
    return out;
  };
  const std::string banned = ids("-l 286-inf");
  EXPECT_EQ(banned.rfind("1,403,407,261,378,432,383,", 0), 0u) << banned;
  EXPECT_NE(banned, "1,403,407,261,378,432,383,286\n");
  EXPECT_EQ(ids("--logit-bias 5+inf -l 286-inf"), "1,403,407,261,378,5,5,5\n");
  int rc = 0;
  std::string out = run_xtile("-m " + model + " -p hi -l 999+1", &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("--logit-bias 999+1: token 999 is outside the vocabulary (512 tokens)"),
            std::string::npos)
      << out;
  out = run_xtile("-m " + model + " -p hi -l 5", &rc);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("expected TOKEN_ID(+|-)BIAS"), std::string::npos) << out;
}

// llama-cli's habits (-ngl 99 -fa --no-mmap -ub N) run the same greedy tokens.
TEST(ModelCliTest, RunAcceptsLlamaCppFlagsAndGivesTheSameTokens) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  std::string out;
  const int rc = test::run_command("(" + test::xtile_binary() + " run -m " + model +
                                       " -p 'Once upon a time' -n 3 --ids -ngl 99 -fa --no-mmap "
                                       "-ub 2 -sm none 2>/dev/null)",
                                   &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "1,403,407,261,378,432,383,286\n");
}

// llama-cli's prompt escapes (on by default): "\n" in -p is a newline, the same tokens as a file
// holding one read with --no-escape; --no-escape keeps the backslash.
TEST(ModelCliTest, RunProcessesPromptEscapesAsLlamaCli) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  const std::string file = test::temp_path("escaped-prompt.txt").string();
  {
    std::ofstream out(file, std::ios::binary);
    out << "Once upon\na time";
  }
  const auto ids = [&](const std::string& flags) {
    std::string out;
    const int rc = test::run_command(
        "(" + test::xtile_binary() + " run -m " + model + " -n 2 --ids " + flags + " 2>/dev/null)",
        &out);
    EXPECT_EQ(rc, 0) << flags << "\n" << out;
    return out;
  };
  const std::string escaped = ids("-p 'Once upon\\na time'");
  EXPECT_EQ(escaped, ids("-f " + file + " --no-escape"));
  EXPECT_NE(escaped, ids("-p 'Once upon\\na time' --no-escape"));
}

// --ignore-eos: generation goes past end-of-generation tokens (here forced by a logit bias).
TEST(ModelCliTest, RunIgnoreEosGeneratesEveryToken) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  const auto ids = [&](const std::string& flags) {
    std::string out;
    const int rc = test::run_command("(" + test::xtile_binary() + " run -m " + model +
                                         " -p 'Once upon a time' -n 4 --ids -l 2+100 " + flags +
                                         " 2>/dev/null)",
                                     &out);
    EXPECT_EQ(rc, 0) << flags << "\n" << out;
    return out;
  };
  EXPECT_EQ(ids(""), "1,403,407,261,378,2\n");
  EXPECT_EQ(ids("--ignore-eos -no-cnv"), "1,403,407,261,378,2,2,2,2\n");
  int rc = 0;
  const std::string out = run_xtile("-m " + model + " -p hi -cnv", &rc);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("-cnv: conversation mode is xtile chat"), std::string::npos) << out;
}

TEST(ModelCliTest, RunWritesTheLogitsOfEveryPosition) {
  XTILE_REQUIRE_FIXTURE(model, "models/micro-llama.gguf");
  XTILE_REQUIRE_FIXTURE(tsv_path, "models/micro-llama.reference.tsv");
  const std::string out_path = test::temp_path("micro-llama.logits.tsv").string();
  int rc = 0;
  const std::string out = run_xtile("-m " + model +
                                        " --prompt-ids 1,403,407,261,378 -n 24 --cache-type f32 "
                                        "--logits " +
                                        out_path,
                                    &rc);
  ASSERT_EQ(rc, 0) << out;
  const auto ref = read_logits_tsv(tsv_path);
  const auto got = read_logits_tsv(out_path);
  ASSERT_EQ(got.size(), ref.size());  // 5 prompt + 24 generated positions
  std::vector<std::vector<float>> rows;
  for (size_t p = 0; p < got.size(); ++p) {
    EXPECT_EQ(got[p].pos, ref[p].pos);
    EXPECT_EQ(got[p].token, ref[p].token);
    EXPECT_EQ(got[p].argmax, ref[p].argmax);
    rows.emplace_back(got[p].logits.begin(), got[p].logits.end());
  }
  expect_logits_near(rows, ref, 1e-3);
  EXPECT_EQ(read_text(out_path).rfind("# pos\tinput_token\targmax\tlogits", 0), 0u);
  // Timings on stderr, llama.cpp style.
  EXPECT_NE(out.find("prompt eval"), std::string::npos) << out;
  EXPECT_NE(out.find("tokens per second"), std::string::npos) << out;
}

TEST(ModelCliTest, RunErrorsNameTheProblem) {
  XTILE_REQUIRE_FIXTURE(model, "models/micro-llama.gguf");
  struct Case {
    std::string args;
    std::string message;
  };
  std::string long_prompt = "1";
  for (int i = 0; i < 600; ++i) long_prompt += ",5";
  const std::vector<Case> cases = {
      {"-m /nonexistent.gguf -p hi", "model file '/nonexistent.gguf' does not exist"},
      {"-m " + model + " -f /nonexistent/prompt.txt",
       "cannot read prompt file '/nonexistent/prompt.txt'"},
      {"-m " + model + " --prompt-ids " + long_prompt,
       "the prompt has 601 tokens, more than the context size 512"},
      {"-m " + model + " --prompt-ids 1,2,3 -c 16 -n 20",
       "-n 20: the prompt (3 tokens) + 20 generated tokens need 23 positions, more than the "
       "context size 16"},
      {"-m " + model + " --prompt-ids 1,x", "--prompt-ids: 'x' is not a token id"},
      {"-m " + model + " --prompt-ids 1,99999", "token id 99999 is out of range"},
      {"-m " + model + " -p hi --amx --kernels ref", "--amx/--no-amx cannot be combined"},
  };
  for (const Case& c : cases) {
    int rc = 0;
    const std::string out = run_xtile(c.args, &rc);
    EXPECT_EQ(rc, 1) << c.args << "\n" << out;
    EXPECT_NE(out.find(c.message), std::string::npos) << c.args << "\n" << out;
    // On a line of its own: a prompt that does not fit is refused before it is echoed.
    const size_t at = out.find("xtile: error:");
    EXPECT_TRUE(at == 0 || (at != std::string::npos && out[at - 1] == '\n')) << c.args << "\n"
                                                                             << out;
  }
  if (!cpu_caps().tier_available(Tier::amx)) {
    int rc = 0;
    const std::string out = run_xtile("-m " + model + " -p hi --amx", &rc);
    EXPECT_EQ(rc, 1);
    EXPECT_NE(out.find("tier 'amx' is not available"), std::string::npos) << out;
  }
}

}  // namespace model_test
}  // namespace
}  // namespace xtile
