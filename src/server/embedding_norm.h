// How an embedding route scales a pooled vector: llama-server's `embd_normalize`. OpenAI's and
// Ollama's routes always use 2, a vector of length 1.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace xtile::server {

// The embd_normalize values: -1 none; 0 the largest magnitude to 32760 (the int16 range:
// 32760·x / max|x|); 1 taxicab (x / Σ|x|); 2 Euclidean (x / √Σx²); p > 2 the p-norm
// (x / (Σ|x|^p)^(1/p)). Any other value is the caller's 400.
constexpr int kNoNorm = -1, kMaxAbsNorm = 0, kEuclideanNorm = 2;
bool is_embedding_norm(long long norm);

// v scaled by `norm`: the sums in double, in index order, so the bits follow from v's alone. A
// zero vector stays zero.
std::vector<float> normalized(std::span<const float> v, int norm);

}  // namespace xtile::server
