// The xtile command line, run as a user would: exit statuses (0 ok, 1 xtile error, 2 usage),
// messages that name the problem, `info` on every fixture and `synth` end to end.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <utility>

#include "cpu/cpu_caps.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace cli_test {  // unity batches: CMakeLists.txt

struct Result {
  int status;
  std::string output;
};

Result xtile_run(const std::string& args, const std::string& env = "") {
  Result r;
  r.status = test::run_command(env + (env.empty() ? "" : " ") + "'" + test::xtile_binary() +
                                   "' " + args,
                               &r.output);
  return r;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(Cli, InfoShowsCpuAndTiers) {
  const Result r = xtile_run("info");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* t : {"ref", "avx2", "avx512", "amx", "amx-emu"})
    EXPECT_TRUE(contains(r.output, std::string("\n  ") + t + " ")) << t << "\n" << r.output;
  EXPECT_TRUE(contains(r.output, "auto picks")) << r.output;
  EXPECT_TRUE(contains(r.output, "default threads")) << r.output;
  EXPECT_TRUE(contains(r.output, "features")) << r.output;
  EXPECT_TRUE(contains(r.output, std::string(tier_name(cpu_caps().best_tier()))));
}

TEST(Cli, InfoListsTensorsOfEveryFixture) {
  XTILE_REQUIRE_FIXTURE(root, "models");
  int files = 0;
  for (const char* dir : {"models", "tokenizers"}) {
    for (const auto& e : std::filesystem::directory_iterator(test::fixture_path(dir))) {
      if (e.path().extension() != ".gguf") continue;
      ++files;
      const Result r = xtile_run("info -m '" + e.path().string() + "'");
      ASSERT_EQ(r.status, 0) << e.path() << "\n" << r.output;
      EXPECT_TRUE(contains(r.output, "tokenizer.ggml.tokens")) << e.path();
      EXPECT_TRUE(contains(r.output, "tensors (")) << e.path();
      EXPECT_TRUE(contains(r.output, "totals: ")) << e.path();
      if (std::string(dir) == "models") {
        EXPECT_TRUE(contains(r.output, "token_embd.weight")) << e.path();
        EXPECT_TRUE(contains(r.output, "bits per weight")) << e.path();
      }
    }
  }
  EXPECT_GE(files, 9);
}

TEST(Cli, InfoShowsShapesInGgmlOrder) {
  XTILE_REQUIRE_FIXTURE(model, "models/micro-qwen3moe.gguf");
  const Result r = xtile_run("info -m '" + model + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "[64, 512]")) << r.output;      // token_embd: [hidden, vocab]
  EXPECT_TRUE(contains(r.output, "[64, 32, 8]")) << r.output;    // ffn_gate_exps
  EXPECT_TRUE(contains(r.output, "[string × 512]")) << r.output;
  EXPECT_TRUE(contains(r.output, "\"qwen3moe\"")) << r.output;
}

TEST(Cli, UnknownFlagExits2NamingIt) {
  Result r = xtile_run("info --no-such-flag");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--no-such-flag")) << r.output;
  r = xtile_run("synth --preset tiny-llama -o '" + test::temp_path("t0.gguf").string() + "' -t 0");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--threads")) << r.output;
  r = xtile_run("info --kernels avx9");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--kernels")) << r.output;
  r = xtile_run("frobnicate");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "frobnicate")) << r.output;
  r = xtile_run("");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "synth")) << r.output;  // the help lists the commands
}

TEST(Cli, HelpAndVersion) {
  Result r = xtile_run("--version");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "xtile ")) << r.output;
  r = xtile_run("--help");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "info")) << r.output;
  EXPECT_TRUE(contains(r.output, "synth")) << r.output;
  r = xtile_run("synth --help");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "--preset")) << r.output;
  EXPECT_TRUE(contains(r.output, "--seed")) << r.output;
}

TEST(Cli, MissingModelFileExits1WithPath) {
  const std::string path = "/nonexistent-dir/missing-model.gguf";
  const Result r = xtile_run("info -m " + path);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "xtile: error: ")) << r.output;
  EXPECT_TRUE(contains(r.output, path)) << r.output;
}

TEST(Cli, CorruptModelFileExits1) {
  const std::string path = test::temp_path("corrupt.gguf").string();
  std::ofstream(path) << "GGUF this is not a model";
  const Result r = xtile_run("info -m '" + path + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "xtile: error: ")) << r.output;
  EXPECT_TRUE(contains(r.output, "corrupt.gguf")) << r.output;
}

TEST(Cli, UnavailableTierIsAClearError) {
  if (cpu_caps().tier_available(Tier::amx)) GTEST_SKIP() << "this CPU has AMX";
  Result r = xtile_run("info --kernels amx");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "xtile: error: ")) << r.output;
  EXPECT_TRUE(contains(r.output, "amx")) << r.output;
  EXPECT_TRUE(contains(r.output, "not available")) << r.output;
  r = xtile_run("info", "XTILE_KERNELS=amx");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "not available")) << r.output;
  // The flag wins over the environment variable; amx-emu runs anywhere.
  r = xtile_run("info --kernels amx-emu", "XTILE_KERNELS=amx");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "selected         amx-emu")) << r.output;
}

TEST(Cli, BadPrefetchSettingIsAClearError) {
  // XTILE_PREFETCH_KB (the GEMVs' next-matrix prefetch) is read at the first GEMV: a model run.
  const std::string model = test::temp_path("prefetch-knob.gguf").string();
  Result r = xtile_run("synth --preset tiny-llama --type q4_0 -o '" + model + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* bad : {"-3", "lots", "12kb"}) {
    r = xtile_run("bench -m '" + model + "' -p 0 -n 2 -r 1",
                  std::string("XTILE_PREFETCH_KB=") + bad);
    EXPECT_EQ(r.status, 1) << bad << ": " << r.output;
    EXPECT_TRUE(contains(r.output, "XTILE_PREFETCH_KB")) << r.output;
  }
  r = xtile_run("bench -m '" + model + "' -p 0 -n 2 -r 1", "XTILE_PREFETCH_KB=0");
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(Cli, BadGemvSettingsAreClearErrorsAndInfoShowsThem) {
  // XTILE_GEMV_PREFETCH and XTILE_GEMV_STREAMS (gemv_prefetch.h) are read once, by `xtile info`
  // and by the first kernel selection: a bad value names the variable and what it takes, before
  // info prints anything.
  for (auto [env, message] :
       {std::pair<const char*, const char*>{"XTILE_GEMV_STREAMS=2",
                                            "XTILE_GEMV_STREAMS must be 1 "
                                            "or 4, got '2'"},
        {"XTILE_GEMV_PREFETCH=l3",
         "XTILE_GEMV_PREFETCH must be l1 or l2, "
         "got 'l3'"},
        {"XTILE_GEMV_Q8_0=fast", "XTILE_GEMV_Q8_0 must be four-l1 or shared, got 'fast'"}}) {
    const Result bad = xtile_run("info", env);
    EXPECT_EQ(bad.status, 1) << env << ": " << bad.output;
    EXPECT_TRUE(contains(bad.output, message)) << bad.output;
    EXPECT_FALSE(contains(bad.output, "CPU\n")) << bad.output;
  }
  const Result r = xtile_run("info", "XTILE_GEMV_STREAMS=4 XTILE_GEMV_PREFETCH=l1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "GEMV streams     4 per one-row tile (XTILE_GEMV_STREAMS=4)"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "GEMV prefetch    to L1 (XTILE_GEMV_PREFETCH=l1)")) << r.output;
  const Result q8 = xtile_run("info", "XTILE_GEMV_Q8_0=four-l1");
  ASSERT_EQ(q8.status, 0) << q8.output;
  EXPECT_TRUE(contains(q8.output,
                       "GEMV Q8_0 avx2   4 streams to L1 per one-row tile "
                       "(XTILE_GEMV_Q8_0=four-l1)"))
      << q8.output;
  const Result shared = xtile_run("info", "XTILE_GEMV_Q8_0=shared");
  ASSERT_EQ(shared.status, 0) << shared.output;
  EXPECT_TRUE(
      contains(shared.output, "GEMV Q8_0 avx2   as the other types (XTILE_GEMV_Q8_0=shared)"))
      << shared.output;
}

TEST(Cli, SynthUnknownPresetListsPresets) {
  const Result r =
      xtile_run("synth --preset nope -o '" + test::temp_path("nope.gguf").string() + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "'nope'")) << r.output;
  for (const char* p : {"qwen3-0.6b", "qwen3-30b-a3b", "llama-3-8b", "tiny-qwen3moe"})
    EXPECT_TRUE(contains(r.output, p)) << p << "\n" << r.output;
}

TEST(Cli, SynthBadTypeVocabAndOutput) {
  const std::string out = test::temp_path("bad.gguf").string();
  Result r = xtile_run("synth --preset tiny-llama --type q5_k -o '" + out + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "q5_k")) << r.output;
  r = xtile_run("synth --preset tiny-llama --vocab /nonexistent/vocab.gguf -o '" + out + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "/nonexistent/vocab.gguf")) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out));
  // An output that is not a regular file (here a FIFO; think -o /dev/null) is refused rather
  // than replaced by the writer's rename.
  const std::string fifo = test::temp_path("fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << fifo << ": " << std::strerror(errno);
  r = xtile_run("synth --preset tiny-llama -o '" + fifo + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "not a regular file")) << r.output;
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
}

TEST(Cli, SynthWritesAModelInfoReads) {
  const std::string path = test::temp_path("cli-tiny-qwen2.gguf").string();
  Result r = xtile_run("synth --preset tiny-qwen2 --type q8_0 -s 7 -t 2 -o '" + path + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "weights are RANDOM")) << r.output;
  r = xtile_run("info -m '" + path + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "blk.1.attn_v.bias")) << r.output;
  EXPECT_TRUE(contains(r.output, "q8_0")) << r.output;
  EXPECT_TRUE(contains(r.output, "general.description")) << r.output;
  r = xtile_run("synth --list-presets");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "qwen3-30b-a3b")) << r.output;
}

// llama-cli's further sampling flags: DRY steers a greedy continuation off the prompt's repeat
// (and a breaker that bounds the repeat under the allowed length leaves it); Mirostat with
// typical sampling gives the same text for the same seed; out of range is an error naming it.
TEST(Cli, RunTakesLlamaCppsFurtherSamplers) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  const std::string prompt =
      "Lily and Tom went to the park. Lily and Tom went to the park. Lily and Tom went to the";
  const std::string base = "run -m '" + model + "' -p '" + prompt + "' -n 8 --temp 0";
  auto continuation = [&](const std::string& flags) {
    const Result r = xtile_run(base + " " + flags);
    EXPECT_EQ(r.status, 0) << r.output;
    const size_t at = r.output.rfind(" went to the");
    return at == std::string::npos ? std::string() : r.output.substr(at + 12, 5);
  };
  EXPECT_EQ(continuation(""), " park");
  EXPECT_NE(continuation("--dry-multiplier 3"), " park");
  EXPECT_EQ(continuation("--dry-multiplier 3 --dry-allowed-length 14 --dry-sequence-breaker ."),
            " park");
  const std::string seeded =
      "run -m '" + model + "' -p 'Once upon a time' -n 24 --mirostat 2 --typical 0.9 -s 5";
  const Result a = xtile_run(seeded), b = xtile_run(seeded);
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_TRUE(contains(a.output, "mirostat 2.00")) << a.output;
  auto story = [](const std::string& out) {
    const size_t at = out.find("Once upon a time");
    return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
  };
  EXPECT_GT(story(a.output).size(), std::string("Once upon a time").size()) << a.output;
  EXPECT_EQ(story(a.output), story(b.output));
  const Result bad = xtile_run(base + " --mirostat 3");
  EXPECT_NE(bad.status, 0);
  EXPECT_TRUE(contains(bad.output, "--mirostat")) << bad.output;
}

// llama-cli's --grammar / --grammar-file / -j: the generated text is one of the grammar's
// (checked with std::regex, written beside it); what cannot be kept is an error naming it.
TEST(Cli, RunHoldsTheOutputToAGrammarOrASchema) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  const std::string grammar = R"g(root ::= " " ("Lily" | "Tom") " " [a-z]+ (" " [a-z]+){0,8} ".")g";
  const std::regex whole(R"( (Lily|Tom) [a-z]+( [a-z]+){0,8}\.)");
  const std::filesystem::path file = test::temp_path("grammar.gbnf");
  std::ofstream(file) << grammar << "\n";
  for (const std::string& how :
       {"--grammar '" + grammar + "'", "--grammar-file '" + file.string() + "'"}) {
    for (int seed = 1; seed <= 3; ++seed) {
      const Result r =
          xtile_run("run -m '" + model + "' -p 'Once upon a time' -n 64 --temp 0.9 -s " +
                    std::to_string(seed) + " " + how);
      ASSERT_EQ(r.status, 0) << r.output;
      const size_t at = r.output.find("Once upon a time");
      ASSERT_NE(at, std::string::npos) << r.output;
      const size_t start = at + std::string("Once upon a time").size();
      const std::string text = r.output.substr(start, r.output.find('\n', start) - start);
      EXPECT_TRUE(std::regex_match(text, whole)) << "'" << text << "'\n" << r.output;
    }
  }
  const std::pair<std::string, std::string> errors[] = {
      {"--grammar 'root ::= y'", "undefined rule 'y'"},
      {"--grammar 'root ::= \"a\"' -j '{}'",
       "give one of --grammar, --grammar-file and --json-schema"},
      {"--grammar-file /nonexistent.gbnf", "cannot read grammar file '/nonexistent.gbnf'"},
      {"-j '{\"type\": \"object\", \"properties\": {\"a\": {\"contains\": {}}}}'",
       "--json-schema: #/properties/a/contains: keyword 'contains' is not supported"},
      {"-j 'not json'", "--json-schema is not JSON"},
  };
  for (const auto& [flags, message] : errors) {
    const Result r = xtile_run("run -m '" + model + "' -p x -n 4 " + flags);
    EXPECT_EQ(r.status, 1) << flags << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, message)) << flags << "\n" << r.output;
  }
}

}  // namespace cli_test
}  // namespace
}  // namespace xtile
