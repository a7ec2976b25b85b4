// The constrained-decoding tests' check of a token filter's mask against its own allows(), and
// their fixture: Qwen's vocabulary (151936 tokens) and its tokens' bytes.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "server/reply_constraint.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server::test {

// Masks all-ones logits over `n_vocab` tokens; expects mask()'s count to be the tokens left
// finite, at least one of them, and every `stride`-th token's fate to be what allows() says.
inline void expect_mask_matches_allows(const ReplyConstraint& c, int32_t n_vocab, int32_t stride) {
  std::vector<float> logits(static_cast<size_t>(n_vocab), 1.0f);
  const int64_t allowed = c.mask(logits);
  int64_t kept = 0;
  for (int32_t id = 0; id < n_vocab; ++id) {
    const bool finite = std::isfinite(logits[static_cast<size_t>(id)]);
    kept += finite;
    if (id % stride == 0) {
      ASSERT_EQ(finite, c.allows(id)) << id;
    }
  }
  EXPECT_EQ(kept, allowed);
  EXPECT_GT(allowed, 0);
}

// Takes text's tokens one by one under c, the mask checked against allows() before each (every
// third token); the text must be taken whole.
inline void expect_mask_along(ReplyConstraint& c, const Tokenizer& tok, const std::string& text) {
  const std::vector<int32_t> ids = tok.encode(text, false, false);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(expect_mask_matches_allows(c, tok.n_vocab(), 3))
        << "before token " << i << " " << tok.decode_token(ids[i]);
    ASSERT_TRUE(c.accept(ids[i])) << i;
  }
}

class QwenVocab : public ::testing::Test {
 protected:
  void SetUp() override {
    XTILE_REQUIRE_FIXTURE(path, "tokenizers/vocab-qwen2.gguf");
    file_ = std::make_unique<gguf::File>(gguf::File::open(path));
    tok_ = Tokenizer::from_gguf(*file_);
    bytes_ = std::make_unique<TokenBytes>(*tok_);
  }
  std::unique_ptr<gguf::File> file_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<TokenBytes> bytes_;
};

}  // namespace xtile::server::test
