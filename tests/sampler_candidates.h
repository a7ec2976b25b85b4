// The sampler tests' candidates: one per logit (id = index), and their ids in list order.
#pragma once

#include <cstdint>
#include <vector>

#include "model/sampler.h"

namespace xtile::test {

inline std::vector<TokenCandidate> cands(const std::vector<float>& logits) {
  std::vector<TokenCandidate> c;
  sampling::fill(logits, &c);
  return c;
}

inline std::vector<int32_t> ids(const std::vector<TokenCandidate>& c) {
  std::vector<int32_t> out;
  for (const TokenCandidate& t : c) out.push_back(t.id);
  return out;
}

}  // namespace xtile::test
