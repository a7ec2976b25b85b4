// One entry point from a float row to any type xtile writes, for the model quantizer and tests.
#include "base/error.h"
#include "quant/quant.h"
#include "quant/quantize_types.h"

namespace xtile {

namespace {

template <typename Block>
Block* as(uint8_t* p) {
  return reinterpret_cast<Block*>(p);
}

}  // namespace

bool can_quantize_to(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

const char* quantizable_type_names() {
  return "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K, iq4_nl, iq4_xs";
}

void quantize_row(GgmlType type, const float* x, uint8_t* out, int64_t k) {
  switch (type) {
    case GgmlType::F32:
      for (int64_t i = 0; i < k; ++i) reinterpret_cast<float*>(out)[i] = x[i];
      return;
    case GgmlType::F16:
      convert_row_f32_to_f16(x, reinterpret_cast<uint16_t*>(out), k);
      return;
    case GgmlType::BF16:
      convert_row_f32_to_bf16(x, reinterpret_cast<uint16_t*>(out), k);
      return;
    case GgmlType::Q8_0:
      quantize_row_q8_0(x, as<BlockQ8_0>(out), k);
      return;
    case GgmlType::Q4_0:
      quantize_row_q4_0(x, as<BlockQ4_0>(out), k);
      return;
    case GgmlType::Q4_1:
      quantize_row_q4_1(x, as<BlockQ4_1>(out), k);
      return;
    case GgmlType::Q5_0:
      quantize_row_q5_0(x, as<BlockQ5_0>(out), k);
      return;
    case GgmlType::Q5_1:
      quantize_row_q5_1(x, as<BlockQ5_1>(out), k);
      return;
    case GgmlType::Q4_K:
      quantize_row_q4_k(x, as<BlockQ4_K>(out), k);
      return;
    case GgmlType::Q5_K:
      quantize_row_q5_k(x, as<BlockQ5_K>(out), k);
      return;
    case GgmlType::Q6_K:
      quantize_row_q6_k(x, as<BlockQ6_K>(out), k);
      return;
    case GgmlType::IQ4_NL:
      quantize_row_iq4_nl(x, as<BlockIq4Nl>(out), k);
      return;
    case GgmlType::IQ4_XS:
      quantize_row_iq4_xs(x, as<BlockIq4Xs>(out), k);
      return;
    default:
      fail("cannot quantize to ", ggml_type_name(type), "; types: ", quantizable_type_names());
  }
}

}  // namespace xtile
