#include "server/embedding_norm.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace xtile::server {

bool is_embedding_norm(long long norm) {
  return norm >= kNoNorm && norm <= std::numeric_limits<int>::max();
}

std::vector<float> normalized(std::span<const float> v, int norm) {
  double scale = 1.0;  // the divisor
  if (norm == kMaxAbsNorm) {
    double most = 0;
    for (float x : v) most = std::max(most, std::fabs(static_cast<double>(x)));
    scale = most / 32760.0;
  } else if (norm == kEuclideanNorm) {
    double sum = 0;
    for (float x : v) sum += static_cast<double>(x) * x;
    scale = std::sqrt(sum);
  } else if (norm == 1) {
    double sum = 0;
    for (float x : v) sum += std::fabs(static_cast<double>(x));
    scale = sum;
  } else if (norm > 2) {
    // In units of the largest magnitude, so that |x|^p neither overflows nor vanishes for a
    // large p: each term is at most 1, and the largest is 1.
    double most = 0;
    for (float x : v) most = std::max(most, std::fabs(static_cast<double>(x)));
    double sum = 0;
    if (most > 0)
      for (float x : v) sum += std::pow(std::fabs(static_cast<double>(x)) / most, norm);
    scale = most * std::pow(sum, 1.0 / norm);
  }
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = scale > 0 ? static_cast<float>(static_cast<double>(v[i]) / scale) : 0.0f;
  return out;
}

}  // namespace xtile::server
