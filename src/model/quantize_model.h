// `xtile quantize`: converts an F32/F16/BF16 GGUF to one of llama-quantize's file types (q8_0,
// q4_0, q4_k_m, iq4_xs, ...; model/ftype.h) with llama-quantize's per-tensor types and ggml's
// reference quantizers without an importance matrix (src/quant), so that the file has the types
// and, tensor by tensor, the bytes llama-quantize writes (docs/QUANTIZE.md).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "cpu/thread_pool.h"
#include "gguf/ggml_types.h"
#include "model/ftype.h"

namespace xtile {

struct QuantizeReport {
  int quantized = 0;              // tensors converted to another type
  int kept = 0;                   // tensors copied as they were
  uint64_t bytes_in = 0;          // tensor data bytes of the input
  uint64_t bytes_out = 0;         // tensor data bytes of the output
  std::map<GgmlType, int> types;  // tensors per type in the output
};

using QuantizeProgress = std::function<void(int done, int total, const std::string& name)>;

// Reads `in`, writes `out` (via a temporary file: a failure leaves no partial output). The types
// come from choose_types(ftype, ...); a tensor whose type changes must be F32/F16/BF16 in the
// input (no silent requantization: the error names it). `progress` is called per tensor.
QuantizeReport quantize_model(const std::string& in, const std::string& out, const Ftype& ftype,
                              ThreadPool& pool, const QuantizeProgress& progress = {},
                              const TypeRuleOptions& options = {});

// A "pure" file: every quantizable tensor in `target` where its block divides the rows (llama's
// --pure; no Q6_K output, no per-layer bumps), the rest as they were. file_type is that of
// ftype_for_type(target).
QuantizeReport quantize_model(const std::string& in, const std::string& out, GgmlType target,
                              ThreadPool& pool, const QuantizeProgress& progress = {});

}  // namespace xtile
