// embd_normalize (server/embedding_norm.h) on vectors whose norms are known by hand, and each
// norm's defining property on random vectors: the scaled vector's own norm is 1 (32760 for
// the max-abs scaling), its direction unchanged.
#include "server/embedding_norm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "vector_norm.h"

namespace xtile::server {
namespace {
namespace embedding_norm_test {  // unity batches: CMakeLists.txt

using xtile::test::p_norm;

TEST(EmbeddingNorm, HandCases) {
  const std::vector<float> v = {3.0f, -4.0f, 0.0f};
  EXPECT_EQ(normalized(v, kNoNorm), v);
  EXPECT_EQ(normalized(v, kEuclideanNorm), (std::vector<float>{0.6f, -0.8f, 0.0f}));
  EXPECT_EQ(normalized(v, 1), (std::vector<float>{3.0f / 7, -4.0f / 7, 0.0f}));
  EXPECT_EQ(normalized(v, kMaxAbsNorm), (std::vector<float>{24570.0f, -32760.0f, 0.0f}));
  // A zero vector stays zero whatever the norm.
  const std::vector<float> zero = {0.0f, 0.0f};
  for (int p : {0, 1, 2, 3, 40}) EXPECT_EQ(normalized(zero, p), zero);
  EXPECT_FALSE(is_embedding_norm(-2));
  EXPECT_TRUE(is_embedding_norm(-1));
  EXPECT_TRUE(is_embedding_norm(7));
  EXPECT_FALSE(is_embedding_norm(1LL << 40));
}

TEST(EmbeddingNorm, EachNormScalesToOneAlongTheSameDirection) {
  std::mt19937 rng(3);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (int t = 0; t < 50; ++t) {
    std::vector<float> v(1 + rng() % 300);
    for (float& x : v) x = gauss(rng) * (t % 5 == 0 ? 1e4f : 1.0f);
    for (int p : {0, 1, 2, 3, 7, 50}) {
      const std::vector<float> n = normalized(v, p);
      ASSERT_EQ(n.size(), v.size());
      EXPECT_NEAR(p_norm(n, p), p == 0 ? 32760.0 : 1.0, p == 0 ? 1e-2 : 1e-5) << "p " << p;
      const double scale = p_norm(v, p) / (p == 0 ? 32760.0 : 1.0);
      for (size_t i = 0; i < v.size(); ++i)
        EXPECT_NEAR(n[i] * scale, v[i], 1e-5 * std::fabs(v[i]) + 1e-6 * scale) << i;
    }
  }
  // A large p on large values: neither |x|^p's overflow nor its underflow (the scaling by the
  // largest magnitude) zeroes the vector: the p-norm tends to the largest magnitude.
  const std::vector<float> big = {1e30f, -5e29f, 1.0f};
  const std::vector<float> n = normalized(big, 1000);
  EXPECT_NEAR(n[0], 1.0f, 1e-6);
  EXPECT_NEAR(n[1], -0.5f, 1e-6);
}

}  // namespace embedding_norm_test
}  // namespace
}  // namespace xtile::server
