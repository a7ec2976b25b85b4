// The GGML tensor types a GGUF file may name, with their block geometry. The numeric ids are
// the on-disk values (ggml.h); ids that ggml retired are absent and rejected as unknown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "base/float_contract.h"

namespace xtile {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;  // as llama.cpp prints it: "f32", "q4_0", ...
  uint32_t block_size;    // elements per block along the row
  uint32_t type_size;     // bytes per block
};

// Traits of a known type id, or nullopt for an unknown/retired id.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t id);
const GgmlTypeTraits& ggml_traits(GgmlType t);  // t must be a known enumerator
std::string_view ggml_type_name(GgmlType t);
// Parses "f32", "f16", "bf16", "q8_0", "q4_0", ... (case-insensitive); nullopt if unknown.
std::optional<GgmlType> ggml_type_from_name(std::string_view name);
// Bytes of a row of `n` elements; n must be a multiple of the block size.
inline size_t ggml_row_bytes(GgmlType t, uint64_t n) {
  const GgmlTypeTraits& tr = ggml_traits(t);
  return static_cast<size_t>(n / tr.block_size * tr.type_size);
}

}  // namespace xtile
