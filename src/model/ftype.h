// llama-quantize's file types ("ftypes": q4_0, q4_k_m, iq4_xs, ...) and its per-tensor type rules
// (llama.cpp src/llama-quant.cpp; ../shared/quant-types.md §1), for the ones xtile writes. An
// ftype names a base type plus a recipe: the output (or tied token_embd) in Q6_K, attn_v and
// ffn_down bumped in some layers, 8-expert MoE rules, fallbacks for rows that the base block
// does not divide. `xtile quantize` and `xtile synth` both take their types from choose_types.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/ggml_types.h"

namespace xtile {

namespace gguf {
class File;
}

struct Ftype {
  std::string_view name;  // llama-quantize's spelling, lower case: "q4_k_m"
  uint32_t file_type;     // general.file_type (LLAMA_FTYPE_*)
  GgmlType base;          // the type of every tensor no rule changes
};

// Every ftype xtile writes: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, iq4_xs, q4_k_s,
// q4_k_m, q5_k_s, q5_k_m, q6_k.
std::span<const Ftype> ftypes();
// The ftype called `name` (case-insensitive), or null.
const Ftype* find_ftype(std::string_view name);
// As find_ftype, but an unknown name is an xtile::Error listing the valid ones.
const Ftype& ftype_by_name(std::string_view name);
std::string ftype_names();  // "f32, f16, ..., q6_k"
// The ftype whose base is `type` with no other name (q8_0 for Q8_0, q4_0 for Q4_0, q6_k for
// Q6_K, ...), or null: the ftype a caller that only knows a tensor type means.
const Ftype* ftype_for_type(GgmlType type);

// What the rules read from the model: general.architecture and the {arch}.* hyperparameters.
struct ModelShape {
  std::string arch;
  uint32_t n_layer = 0;    // block_count
  uint32_t n_head = 0;     // attention.head_count (of layer 0 when per layer)
  uint32_t n_head_kv = 0;  // attention.head_count_kv
  uint32_t n_expert = 0;   // expert_count (0 for dense models)
  static ModelShape from_gguf(const gguf::File& file);
};

// One tensor as the rules see it.
struct TensorDesc {
  std::string name;
  uint32_t n_dims = 0;
  uint64_t ne0 = 0;               // row length
  GgmlType type = GgmlType::F32;  // the source type (kept when the tensor is not quantized)
};

struct TypeRuleOptions {
  // llama-quantize --pure: every quantizable tensor gets the base type (no recipe, no fallback).
  bool pure = false;
};

// Whether llama-quantize quantizes a tensor at all (tensor_allows_quantization): 2-D/3-D tensors
// whose name ends in "weight", except norms, the MoE router (ffn_gate_inp) and a few small
// position/conv tensors of other architectures.
bool allows_quantization(std::string_view name, uint32_t n_dims);

// The type of every tensor of a model quantized to `ftype`, in the order given. Tensors that are
// not quantized keep desc.type. The recipe counts attn_v tensors and parses layers in llama's
// tensor order (by layer, then name), whatever order `tensors` has. Where llama-quantize has no
// fallback for a row length (a 32-element base type and ne0 % 32 != 0) it fails; xtile keeps the
// tensor's source type instead (docs/QUANTIZE.md).
std::vector<GgmlType> choose_types(const Ftype& ftype, const ModelShape& shape,
                                   std::span<const TensorDesc> tensors,
                                   const TypeRuleOptions& options = {});

}  // namespace xtile
