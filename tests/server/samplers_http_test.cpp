// llama-server's further samplers (typical_p, top_n_sigma, xtc_*, dynatemp_*, mirostat*, dry_*)
// through the real binary: taken, deterministic for a seed, the same alone or in a batch beside
// another prompt (the scheduler's contract holds for them too), DRY steering a greedy
// continuation off a repeat, and their errors naming the field.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "http_client.h"
#include "server_process.h"

namespace xtile::test {
namespace {
namespace samplers_http_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

class SamplersHttp : public StoriesSuite<SamplersHttp> {
 public:
  static constexpr const char* kFlags[] = {"-np", "3", "-c", "256", "-t", "2"};

 protected:
  std::string text(const json& body) {
    const Reply r = post(port_, "/v1/completions", body);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.j()["choices"][0]["text"].get<std::string>() : "";
  }
};

const char* kRepeat =
    "Lily and Tom went to the park. Lily and Tom went to the park. Lily and Tom "
    "went to the";

TEST_F(SamplersHttp, TakenDeterministicAndBatchInvariant) {
  const json extras = {{"typical_p", 0.9},        {"top_n_sigma", 2.0},
                       {"xtc_probability", 0.5},  {"xtc_threshold", 0.05},
                       {"dynatemp_range", 0.5},   {"dynatemp_exponent", 1.5},
                       {"dry_multiplier", 0.8},   {"dry_base", 1.75},
                       {"dry_allowed_length", 2}, {"dry_sequence_breakers", {"\n", "."}}};
  json body = {{"prompt", "Once upon a time"}, {"max_tokens", 24}, {"seed", 11}};
  body.update(extras);
  const std::string once = text(body);
  EXPECT_FALSE(once.empty());
  EXPECT_EQ(text(body), once);
  json mirostat = {
      {"prompt", "Once upon a time"}, {"max_tokens", 24},   {"seed", 11}, {"mirostat", 2},
      {"mirostat_tau", 3.0},          {"mirostat_eta", 0.2}};
  const std::string m = text(mirostat);
  EXPECT_EQ(text(mirostat), m);
  mirostat["mirostat"] = 1;
  EXPECT_FALSE(text(mirostat).empty());

  // Two prompts in one request run side by side; each gives what it gives alone.
  json pair = body;
  pair["prompt"] = {"Once upon a time", kRepeat};
  const Reply both = post(port_, "/v1/completions", pair);
  ASSERT_EQ(both.status, 200) << both.body;
  json second = body;
  second["prompt"] = kRepeat;
  EXPECT_EQ(both.j()["choices"][0]["text"], once);
  EXPECT_EQ(both.j()["choices"][1]["text"], text(second));
}

TEST_F(SamplersHttp, DrySteersAGreedyContinuationOffARepeat) {
  const json greedy = {{"prompt", kRepeat}, {"max_tokens", 8}, {"temperature", 0}};
  const std::string plain = text(greedy);
  ASSERT_TRUE(plain.starts_with(" park")) << plain;  // the repeat goes on without DRY
  json dry = greedy;
  dry["dry_multiplier"] = 3.0;
  const std::string steered = text(dry);
  EXPECT_FALSE(steered.starts_with(" park")) << steered;
  // A breaker bounds the repeat: after the last "." the text's end repeats 8 tokens (the
  // fixture's vocabulary splits the words), and the 4 of " park." make 12 at most, under the 14
  // allowed; without "." among the breakers the repeat runs back over both sentences.
  dry["dry_allowed_length"] = 14;
  dry["dry_sequence_breakers"] = {"."};
  EXPECT_EQ(text(dry), plain);
  dry["dry_sequence_breakers"] = {"\n"};
  EXPECT_FALSE(text(dry).starts_with(" park")) << text(dry);
}

TEST_F(SamplersHttp, OutOfRangeIsA400NamingTheField) {
  auto param_of = [&](const json& extra) {
    json body = {{"prompt", "x"}, {"max_tokens", 1}};
    body.update(extra);
    const Reply r = post(port_, "/v1/completions", body);
    EXPECT_EQ(r.status, 400) << r.body;
    return r.status == 400 ? r.j()["error"]["param"] : json();
  };
  EXPECT_EQ(param_of({{"mirostat", 3}}), "mirostat");
  EXPECT_EQ(param_of({{"typical_p", 1.5}}), "typical_p");
  EXPECT_EQ(param_of({{"xtc_probability", "a"}}), "xtc_probability");
  EXPECT_EQ(param_of({{"dry_base", 0.5}}), "dry_base");
  EXPECT_EQ(param_of({{"dry_penalty_last_n", -2}}), "dry_penalty_last_n");
  EXPECT_EQ(param_of({{"dry_sequence_breakers", json::array()}}), "dry_sequence_breakers");
  EXPECT_EQ(param_of({{"dry_sequence_breakers", {"\n", ""}}}), "dry_sequence_breakers");
}

// The server's flags set the defaults a request's fields override.
class SamplerDefaultsHttp : public StoriesSuite<SamplerDefaultsHttp> {
 public:
  static constexpr const char* kFlags[] = {
      "-np", "1", "-c", "256", "-t", "2", "--dry-multiplier", "3", "--dry-sequence-breaker", "\\n"};
};

TEST_F(SamplerDefaultsHttp, ServeFlagsAreEachRequestsDefaults) {
  const json greedy = {{"prompt", kRepeat}, {"max_tokens", 8}, {"temperature", 0}};
  Reply r = post(port_, "/v1/completions", greedy);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(r.j()["choices"][0]["text"].get<std::string>().starts_with(" park")) << r.body;
  json off = greedy;
  off["dry_multiplier"] = 0;
  r = post(port_, "/v1/completions", off);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.j()["choices"][0]["text"].get<std::string>().starts_with(" park")) << r.body;
}

}  // namespace samplers_http_test
}  // namespace
}  // namespace xtile::test
