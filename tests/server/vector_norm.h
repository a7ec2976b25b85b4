// The embedding tests' norms, written out directly: the p-norm of v (p >= 1), or its largest
// magnitude (p = 0).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace xtile::test {

inline double p_norm(const std::vector<float>& v, int p) {
  double s = 0;
  for (float x : v)
    s = p == 0 ? std::max(s, std::fabs(static_cast<double>(x)))
               : s + std::pow(std::fabs(static_cast<double>(x)), p);
  return p == 0 ? s : std::pow(s, 1.0 / p);
}

}  // namespace xtile::test
