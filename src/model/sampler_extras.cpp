// llama-server's further filters (sampler.h): top-n-sigma, locally typical sampling, XTC and the
// dynamic temperature. Each is written from its paper's or llama.cpp's documented rule; sums
// and logarithms in double.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "model/sampler.h"

namespace xtile::sampling {

namespace {

// -Σ p ln p over the candidates' p (softmax already applied).
double entropy(const std::vector<TokenCandidate>& c) {
  double h = 0.0;
  for (const TokenCandidate& t : c)
    if (t.p > 0.0f) h -= static_cast<double>(t.p) * std::log(static_cast<double>(t.p));
  return h;
}

}  // namespace

void top_n_sigma(std::vector<TokenCandidate>* c, float n) {
  if (n <= 0.0f || c->size() <= 1) return;
  float max = -INFINITY;
  double sum = 0.0;
  size_t count = 0;
  for (const TokenCandidate& t : *c) {
    max = std::max(max, t.logit);
    if (std::isfinite(t.logit)) {
      sum += t.logit;
      ++count;
    }
  }
  if (!std::isfinite(max) || count == 0) return;  // a +inf logit decides alone; nothing finite
  const double mean = sum / static_cast<double>(count);
  double var = 0.0;
  for (const TokenCandidate& t : *c)
    if (std::isfinite(t.logit)) var += (t.logit - mean) * (t.logit - mean);
  const double threshold = max - n * std::sqrt(var / static_cast<double>(count));
  std::erase_if(*c, [&](const TokenCandidate& t) { return t.logit < threshold; });
}

void typical(std::vector<TokenCandidate>* c, float p) {
  if (p >= 1.0f || c->size() <= 1) return;
  sort(c);
  softmax(c);
  const double h = entropy(*c);
  // How far each token's surprise lies from the expected surprise; ties keep the sorted order.
  std::vector<double> distance(c->size());
  for (size_t i = 0; i < c->size(); ++i) {
    const double pi = (*c)[i].p;
    distance[i] = pi > 0.0 ? std::fabs(-std::log(pi) - h) : INFINITY;
  }
  std::vector<size_t> order(c->size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return distance[a] < distance[b]; });
  double cum = 0.0;
  size_t keep = order.size();
  for (size_t i = 0; i < order.size(); ++i) {
    cum += (*c)[order[i]].p;
    if (cum > p) {
      keep = i + 1;
      break;
    }
  }
  std::vector<TokenCandidate> kept;
  for (size_t i = 0; i < keep; ++i) kept.push_back((*c)[order[i]]);
  sort(&kept);  // the draw walks them most likely first
  *c = std::move(kept);
}

void xtc(std::vector<TokenCandidate>* c, float probability, float threshold, double u) {
  // Two tokens at or above a threshold over one half cannot both exist.
  if (probability <= 0.0f || threshold > 0.5f || c->size() < 2 || u >= probability) return;
  sort(c);
  softmax(c);
  size_t last = 0;  // the least likely candidate at or above the threshold
  while (last + 1 < c->size() && (*c)[last + 1].p >= threshold) ++last;
  if ((*c)[0].p < threshold || last == 0) return;
  c->erase(c->begin(), c->begin() + static_cast<std::ptrdiff_t>(last));
}

void dynamic_temperature(std::vector<TokenCandidate>* c, float t, float range, float exponent) {
  if (range <= 0.0f) {
    temperature(c, t);
    return;
  }
  if (c->size() <= 1) return;
  const double lo = std::max(0.0, static_cast<double>(t) - range);
  const double hi = static_cast<double>(t) + range;
  softmax(c);
  const double normalised = entropy(*c) / std::log(static_cast<double>(c->size()));
  const double dyn = lo + (hi - lo) * std::pow(normalised, static_cast<double>(exponent));
  if (dyn <= 0.0) {  // no randomness left: the most likely candidate alone
    sort(c);
    c->resize(1);
    return;
  }
  temperature(c, static_cast<float>(dyn));
}

}  // namespace xtile::sampling
