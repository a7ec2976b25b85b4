// The constrained-decoding tests' check of a token filter's mask against its own allows().
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "server/reply_constraint.h"

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

}  // namespace xtile::server::test
