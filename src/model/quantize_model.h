// `xtile quantize`: converts an F32/F16/BF16 GGUF into Q8_0 or Q4_0 by GGML's reference rules
// (src/quant), the way llama.cpp's quantizer with a pure type does: 2-D and 3-D weights whose
// rows (ne[0]) are a multiple of 32 are quantized; 1-D tensors (norms, biases), the MoE router
// (ffn_gate_inp) and tensors whose rows are not a multiple of 32 keep their type.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "cpu/thread_pool.h"
#include "gguf/ggml_types.h"

namespace xtile {

struct QuantizeReport {
  int quantized = 0;
  int kept = 0;
  uint64_t bytes_in = 0;   // tensor data bytes of the input
  uint64_t bytes_out = 0;  // tensor data bytes of the output
};

// Whether quantize_model would quantize tensor `name` of `n_dims` dims with row length ne0.
bool should_quantize(const std::string& name, uint32_t n_dims, uint64_t ne0);

// Reads `in`, writes `out` (via a temporary file: a failure leaves no partial output).
// target must be Q8_0 or Q4_0; an already-quantized input tensor that would be quantized is an
// error naming it (no silent requantization). `progress(done, total, name)` is called per tensor.
QuantizeReport quantize_model(const std::string& in, const std::string& out, GgmlType target,
                              ThreadPool& pool,
                              const std::function<void(int, int, const std::string&)>& progress = {});

}  // namespace xtile
