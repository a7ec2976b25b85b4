// DRY, "don't repeat yourself" (sampler.h; p-e-w's sampler, as llama.cpp's --dry-* flags set
// it). For each earlier position j of the window, the length of the longest common suffix of the
// text before j and the whole text is the repeat that the token at j continued; a candidate
// token's repeat is the longest among the positions that hold it. The common suffixes of every j
// come in one pass: they are the Z-function of the window reversed. A sequence breaker ends a
// repeat: none is longer than the run of non-breakers at the text's end (equal runs hold their
// breakers at the same places).
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "model/sampler.h"

namespace xtile::sampling {

namespace {

// z[i]: the length of the longest common prefix of s and s[i..] (z[0] = |s|).
std::vector<size_t> z_function(const std::vector<int32_t>& s) {
  const size_t n = s.size();
  std::vector<size_t> z(n, 0);
  if (n == 0) return z;
  z[0] = n;
  for (size_t i = 1, l = 0, r = 0; i < n; ++i) {
    if (i < r) z[i] = std::min(r - i, z[i - l]);
    while (i + z[i] < n && s[z[i]] == s[i + z[i]]) ++z[i];
    if (i + z[i] > r) {
      l = i;
      r = i + z[i];
    }
  }
  return z;
}

}  // namespace

void dry(std::vector<TokenCandidate>* c, std::span<const int32_t> history, const SamplerParams& p) {
  if (p.dry_multiplier <= 0.0f || p.dry_penalty_last_n == 0 || history.size() < 2) return;
  std::span<const int32_t> window = history;
  if (p.dry_penalty_last_n > 0 && window.size() > static_cast<size_t>(p.dry_penalty_last_n))
    window = window.last(static_cast<size_t>(p.dry_penalty_last_n));
  const auto is_breaker = [&](int32_t t) {
    return std::binary_search(p.dry_breakers.begin(), p.dry_breakers.end(), t);
  };
  const size_t n = window.size();
  size_t tail = 0;  // non-breakers at the end
  while (tail < n && !is_breaker(window[n - 1 - tail])) ++tail;
  if (tail == 0) return;
  const std::vector<int32_t> reversed(window.rbegin(), window.rend());
  const std::vector<size_t> z = z_function(reversed);
  // The text before position j ends at reversed index n - j.
  std::vector<std::pair<int32_t, size_t>> repeats;  // (token at j, its repeat), longest kept below
  for (size_t j = 1; j < n; ++j) {
    const size_t length = std::min(z[n - j], tail);
    if (length >= static_cast<size_t>(std::max(p.dry_allowed_length, 0)) && length > 0)
      repeats.push_back({window[j], length});
  }
  if (repeats.empty()) return;
  std::sort(repeats.begin(), repeats.end());  // by token, then length: a token's longest last
  for (size_t i = 0; i < repeats.size(); ++i) {
    if (i + 1 < repeats.size() && repeats[i + 1].first == repeats[i].first) continue;
    const auto [token, length] = repeats[i];
    if (token < 0 || static_cast<size_t>(token) >= c->size()) continue;
    const double penalty =
        static_cast<double>(p.dry_multiplier) *
        std::pow(static_cast<double>(p.dry_base),
                 static_cast<double>(length) - static_cast<double>(p.dry_allowed_length));
    // A huge penalty stays a finite number (the token is as good as banned).
    TokenCandidate& t = (*c)[static_cast<size_t>(token)];
    if (!std::isfinite(t.logit)) continue;  // banned (or forced) by a bias already
    t.logit = static_cast<float>(std::max<double>(t.logit - std::min(penalty, 1e30), -FLT_MAX));
  }
}

}  // namespace xtile::sampling
