#include "kernels/kernel_api.h"

#include "base/error.h"

namespace xtile {

QuantizedActs& ActBuffer::resize(int64_t m, int64_t k) {
  if (k % 32 != 0) fail("activations: K = ", k, " is not a multiple of 32");
  const int64_t nb = k / 32;
  // q first (64-byte aligned rows when k % 64 == 0), then d, s, sd, sl; each region 64-aligned.
  auto round64 = [](size_t b) { return (b + 63) / 64 * 64; };
  const size_t q_bytes = round64(static_cast<size_t>(m * k));
  const size_t v_bytes = round64(static_cast<size_t>(m * nb) * 4);  // one float/int32 per block
  const size_t need = q_bytes + 4 * v_bytes;
  if (buf_.size() < need) buf_ = AlignedBuffer(need);
  acts_.m = m;
  acts_.k = k;
  uint8_t* p = buf_.data();
  acts_.q = reinterpret_cast<int8_t*>(p);
  acts_.d = reinterpret_cast<float*>(p + q_bytes);
  acts_.s = reinterpret_cast<int32_t*>(p + q_bytes + v_bytes);
  acts_.sd = reinterpret_cast<float*>(p + q_bytes + 2 * v_bytes);
  acts_.sl = reinterpret_cast<int32_t*>(p + q_bytes + 3 * v_bytes);
  return acts_;
}

void complete_act_row(QuantizedActs& a, int64_t row) {
  const int64_t nb = a.k / 32;
  const int8_t* q = a.q + row * a.k;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t i = row * nb + b;
    a.sd[i] = static_cast<float>(a.s[i]) * a.d[i];  // exact conversion, one rounding
    int32_t lo = 0;
    for (int e = 0; e < 16; ++e) lo += q[b * 32 + e];
    a.sl[i] = lo;
  }
}

void quantize_act_row(QuantizeRowFn quantize, const float* x, QuantizedActs& a, int64_t row) {
  const int64_t nb = a.k / 32;
  quantize(x, a.k, a.q + row * a.k, a.d + row * nb, a.s + row * nb);
  complete_act_row(a, row);
}

void check_layout(const PackedMatrix& w, Layout expected, std::string_view kernel_name) {
  if (w.layout != expected)
    fail("kernel ", kernel_name, " reads layout ", layout_name(expected),
         " but the tensor is packed as ", layout_name(w.layout));
}

void fail_row_length(std::string_view kernel_name, int64_t k) {
  fail(kernel_name, ": row length ", k, " is not a non-negative multiple of 32");
}

void fail_rounding_mode(std::string_view kernel_name) {
  fail(kernel_name, ": the FP rounding mode is not round-to-nearest");
}

}  // namespace xtile
