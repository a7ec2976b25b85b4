#include "model_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "model/generate.h"
#include "model/session.h"

namespace xtile::test {

std::vector<int32_t> parse_id_list(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty() && item.find_first_not_of(" \t\r\n") != std::string::npos)
      ids.push_back(std::stoi(item));
  return ids;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<LogitsRow> read_logits_tsv(const std::string& path) {
  std::vector<LogitsRow> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream ls(line);
    LogitsRow r;
    ls >> r.pos >> r.token >> r.argmax;
    double v;
    while (ls >> v) r.logits.push_back(v);
    rows.push_back(std::move(r));
  }
  return rows;
}

GreedyRun run_greedy(const WeightStore& w, ThreadPool& pool, const std::vector<int32_t>& prompt,
                     int64_t n, int64_t batch, KvType kv) {
  SessionOptions so;
  so.n_batch = batch;
  so.kv_type = kv;
  so.n_ctx = std::min<int64_t>(w.config().n_ctx_train, 512);
  Session s(w, pool, so);
  GreedyRun r;
  GenerateOptions go;
  go.n_predict = n;
  go.eval_last = true;
  go.on_logits = [&r](int64_t pos, int32_t token, std::span<const float> logits) {
    EXPECT_EQ(pos, static_cast<int64_t>(r.logits.size()));
    r.inputs.push_back(token);
    r.logits.emplace_back(logits.begin(), logits.end());
  };
  r.generated = generate(s, prompt, go).tokens;
  return r;
}

void expect_identical(const GreedyRun& a, const GreedyRun& b, const std::string& what) {
  EXPECT_EQ(a.generated, b.generated) << what;
  ASSERT_EQ(a.logits.size(), b.logits.size()) << what;
  for (size_t p = 0; p < a.logits.size(); ++p)
    ASSERT_EQ(std::memcmp(a.logits[p].data(), b.logits[p].data(), a.logits[p].size() * 4), 0)
        << what << ": logits of position " << p << " differ";
}

void expect_logits_near(const std::vector<std::vector<float>>& got,
                        const std::vector<LogitsRow>& ref, double tol) {
  ASSERT_GE(got.size(), ref.size());
  for (size_t p = 0; p < ref.size(); ++p) {
    ASSERT_EQ(got[p].size(), ref[p].logits.size()) << "position " << p;
    double worst = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < got[p].size(); ++i) {
      const double d = std::fabs(got[p][i] - ref[p].logits[i]);
      if (d > worst) worst = d, worst_i = i;
    }
    EXPECT_LE(worst, tol) << "position " << p << " logit " << worst_i << ": " << got[p][worst_i]
                          << " vs reference " << ref[p].logits[worst_i];
  }
}

void expect_one_batch_matches(const WeightStore& w, ThreadPool& pool,
                              const std::vector<int32_t>& tokens, const GreedyRun& run) {
  Session s(w, pool, SessionOptions{.n_ctx = 64, .kv_type = KvType::f32});
  std::vector<float> all;
  s.eval(tokens, true, &all);
  const size_t v = static_cast<size_t>(w.config().n_vocab);
  ASSERT_GE(run.logits.size(), tokens.size());
  for (size_t p = 0; p < tokens.size(); ++p)
    EXPECT_EQ(std::memcmp(all.data() + p * v, run.logits[p].data(), v * sizeof(float)), 0)
        << "position " << p;
}

}  // namespace xtile::test
