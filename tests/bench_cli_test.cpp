// `xtile bench`: the table, JSON that parses, and clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "model/synth.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace bench_cli_test {  // unity batches: CMakeLists.txt

std::string tiny_model() {
  static const std::string path = [] {
    const std::string p = test::temp_path("bench-tiny-qwen3-q4_0.gguf").string();
    synth::Options o;
    o.preset = "tiny-qwen3";
    o.type = GgmlType::Q4_0;
    synth::write_model(o, p);
    return p;
  }();
  return path;
}

TEST(BenchCli, JsonParsesWithOneRowPerTierAndTest) {
  std::string out;
  const std::string cmd = test::xtile_binary() + " bench -m " + tiny_model() +
                          " -p 16 -n 4 -pg 8,2 -r 2 -t 1,2 --kernels ref,amx-emu -o json 2>/dev/null";
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  const auto j = nlohmann::json::parse(out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u * 2u * 3u);  // tiers × threads × tests
  for (const auto& row : j) {
    EXPECT_GT(row.at("avg_ts").get<double>(), 0.0);
    EXPECT_EQ(row.at("samples_ns").size(), 2u);
    EXPECT_EQ(row.at("model_type").get<std::string>().rfind("qwen3 ", 0), 0u);
    const std::string test = row.at("test");
    EXPECT_TRUE(test == "pp16" || test == "tg4" || test == "pp8+tg2") << test;
  }
  EXPECT_EQ(j[0].at("tier"), "ref");
  EXPECT_EQ(j.back().at("tier"), "amx-emu");
}

TEST(BenchCli, DepthTestsParseInJsonWithTheirDepthAndCacheTypes) {
  // llama-bench's -d: every test at every depth ("tg4 @ d40"), and -ctk / -ctv.
  std::string out;
  const std::string cmd = test::xtile_binary() + " bench -m " + tiny_model() +
                          " -p 8 -n 4 -d 0,40 -r 1 -t 1 -ctk q8_0 -ctv bf16 -o json 2>/dev/null";
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  const auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j.size(), 4u);
  std::vector<std::string> names;
  for (const auto& row : j) {
    names.push_back(row.at("test"));
    EXPECT_EQ(row.at("type_kv"), "q8_0/bf16");
    EXPECT_GT(row.at("avg_ts").get<double>(), 0.0);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"pp8", "tg4", "pp8 @ d40", "tg4 @ d40"}));
  EXPECT_EQ(j[3].at("n_depth"), 40);
  EXPECT_EQ(j[0].at("n_depth"), 0);
  EXPECT_EQ(test::run_command(test::xtile_binary() + " bench -m " + tiny_model() +
                                  " -ctk q9_9 2>&1",
                              &out),
            1);
  EXPECT_NE(out.find("q9_9"), std::string::npos) << out;
}

TEST(BenchCli, ParallelSequencesAreGenerationTestsInJson) {
  // -np: every tg test once per sequence count ("tg4 x3"), at every depth; pp tests once.
  std::string out;
  const std::string cmd = test::xtile_binary() + " bench -m " + tiny_model() +
                          " -p 8 -n 4 -np 1,3 -d 0,20 -r 2 -t 2 --roofline -o json 2>/dev/null";
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  const auto j = nlohmann::json::parse(out);
  std::vector<std::string> names;
  for (const auto& row : j) {
    names.push_back(row.at("test"));
    EXPECT_GT(row.at("avg_ts").get<double>(), 0.0);
    EXPECT_EQ(row.at("samples_ns").size(), 2u);
    EXPECT_GT(row.at("roofline").get<double>(), 0.0) << row.at("test");
  }
  EXPECT_EQ(names, (std::vector<std::string>{"pp8", "tg4", "tg4 x3", "pp8 @ d20", "tg4 @ d20",
                                             "tg4 x3 @ d20"}));
  EXPECT_EQ(j[2].at("n_parallel"), 3);
  EXPECT_EQ(j[2].at("n_gen"), 4);
  EXPECT_EQ(j[1].at("n_parallel"), 1);
  EXPECT_EQ(j[5].at("n_depth"), 20);
  for (const char* bad : {"0", "x", "257"}) {
    EXPECT_EQ(
        test::run_command(
            test::xtile_binary() + " bench -m " + tiny_model() + " -np " + bad + " 2>&1", &out),
        1)
        << bad;
    EXPECT_NE(out.find("-np"), std::string::npos) << out;
  }
}

TEST(BenchCli, RooflineProbesTheBandwidthAroundEachGenerationTest) {
  // --roofline: a generation test carries the read probe taken right before and right after it
  // and its fraction of the larger one; a prompt test its fraction of the int8 peak.
  std::string out;
  const std::string cmd = test::xtile_binary() + " bench -m " + tiny_model() +
                          " -p 8 -n 4 -r 1 -t 1 --roofline -o json 2>/dev/null";
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  const auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_FALSE(j[0].contains("read_bandwidth_before"));  // pp8
  const auto& tg = j[1];
  ASSERT_EQ(tg.at("test"), "tg4");
  const double before = tg.at("read_bandwidth_before"), after = tg.at("read_bandwidth_after");
  EXPECT_GT(before, 1e8);
  EXPECT_GT(after, 1e8);
  const std::string of = tg.at("roofline_of");
  char want[32];
  std::snprintf(want, sizeof want, "%.1f GB/s", std::max(before, after) / 1e9);
  EXPECT_EQ(of, want);
  EXPECT_GT(tg.at("roofline").get<double>(), 0.0);
}

TEST(BenchCli, MarkdownTableHasTheColumns) {
  std::string out;
  const std::string cmd = test::xtile_binary() + " bench -m " + tiny_model() +
                          " -p 8 -n 2 -r 1 -t 1 --kernels ref -o md 2>/dev/null";
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  EXPECT_NE(out.find("| model | size | params | tier | threads | test | t/s |"), std::string::npos)
      << out;
  EXPECT_NE(out.find("| pp8 |"), std::string::npos) << out;
  EXPECT_NE(out.find("| tg2 |"), std::string::npos) << out;
}

TEST(BenchCli, MissingModelIsAClearError) {
  std::string out;
  EXPECT_EQ(test::run_command(test::xtile_binary() + " bench -m /nonexistent/m.gguf", &out), 1);
  EXPECT_NE(out.find("/nonexistent/m.gguf"), std::string::npos) << out;
}

TEST(BenchCli, UnknownTierIsAClearError) {
  std::string out;
  EXPECT_EQ(test::run_command(
                test::xtile_binary() + " bench -m " + tiny_model() + " --kernels avx9000", &out),
            1);
  EXPECT_NE(out.find("avx9000"), std::string::npos) << out;
}

// A depth no machine could hold fails before any allocation, naming the size: the session's
// cache doubling from 4096 positions would otherwise overflow past 2^62 and never end.
TEST(BenchCli, DepthBeyondAnyMemoryIsAClearError) {
  std::string out;
  EXPECT_EQ(test::run_command(test::xtile_binary() + " bench -m " + tiny_model() +
                                  " -p 0 -n 1 -r 1 -d 4611686018427387904",
                              &out),
            1);
  EXPECT_NE(out.find("4611686018427387906 positions is beyond any machine's memory"),
            std::string::npos)
      << out;
}

// Bad values name the problem: an unknown output format (a run-time check, exit 1) and zero
// repetitions (a flag check, exit 2).
TEST(BenchCli, BadFormatAndZeroRepetitionsAreClearErrors) {
  const struct {
    const char* flags;
    int rc;
    const char* message;
  } cases[] = {{"-o xml", 1, "unknown output format 'xml'"}, {"-r 0", 2, "at least 1, not '0'"}};
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(
        test::run_command(test::xtile_binary() + " bench -m " + tiny_model() + " " + c.flags, &out),
        c.rc)
        << c.flags << "\n"
        << out;
    EXPECT_NE(out.find(c.message), std::string::npos) << c.flags << "\n" << out;
  }
}

// A llama-bench command line runs as written: -ngl, -fa, -mmp, -nkvo, -sm, -rtr (lists too) are
// accepted, the settings xtile does not have get a note, and -ub caps the batch.
TEST(BenchCli, LlamaBenchFlagsRunAsWritten) {
  std::string out;
  const std::string cmd = test::xtile_binary() + " bench -m " + tiny_model() +
                          " -p 16 -n 0 -r 1 -t 1 -ngl 0,99 -fa 0,1 -mmp 0 -nkvo 0 -sm none "
                          "-rtr 1 -b 2048 -ub 8 -o json";
  // stdout alone (run_command merges stderr into the output otherwise), then stderr alone.
  ASSERT_EQ(test::run_command("(" + cmd + " 2>/dev/null)", &out), 0) << out;
  const auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0].at("n_batch"), 8);  // min(-b 2048, -ub 8)
  ASSERT_EQ(test::run_command("(" + cmd + " 2>&1 >/dev/null)", &out), 0) << out;
  EXPECT_NE(out.find("note: -fa off: xtile has one attention"), std::string::npos) << out;
  EXPECT_NE(out.find("note: -mmp 0: xtile always maps the model file"), std::string::npos) << out;
}

// Before, "-ngl 99" parsed as "-n gl 99" and "-mmp 0" as "-m mp 0": errors that named other
// flags. Bad values name the flag; llama.cpp flags for what xtile does not do say so.
TEST(BenchCli, LlamaFlagsWithBadValuesOrUnsupportedFeaturesAreClearErrors) {
  const std::pair<std::string, std::string> cases[] = {
      {"-fa maybe", "--flash-attn: expected on, off, auto, 0 or 1, not 'maybe'"},
      {"-ngl many", "--n-gpu-layers: expected a layer count, not 'many'"},
      {"-mmp 2", "--mmap: expected on, off, auto, 0 or 1, not '2'"},
      {"-ub 0", "--ubatch-size"},
      {"-ot exps=CPU", "-ot: tensor overrides place tensors on devices"},
      {"-hf Qwen/Qwen3-0.6B-GGUF", "-hf: downloads from Hugging Face"},
      {"-md draft.gguf", "-md: a draft model (speculative decoding) is not supported"},
  };
  for (const auto& [flags, message] : cases) {
    std::string out;
    EXPECT_EQ(
        test::run_command(test::xtile_binary() + " bench -m " + tiny_model() + " " + flags, &out),
        2)
        << flags << "\n"
        << out;
    EXPECT_NE(out.find(message), std::string::npos) << flags << "\n" << out;
  }
}

}  // namespace bench_cli_test
}  // namespace
}  // namespace xtile
