#include "kernels/kernel_api.h"

#include "base/error.h"

namespace xtile {

std::string_view layout_name(Layout l) {
  switch (l) {
    case Layout::q8_0_rows: return "q8_0_rows";
    case Layout::q4_0_rows: return "q4_0_rows";
    case Layout::q8_0_x16: return "q8_0_x16";
    case Layout::q4_0_x16: return "q4_0_x16";
  }
  return "unknown";
}

QuantizedActs& ActBuffer::resize(int64_t m, int64_t k) {
  if (k % 32 != 0) fail("activations: K = ", k, " is not a multiple of 32");
  const int64_t nb = k / 32;
  // q first (64-byte aligned rows when k % 64 == 0), then d, then s; each region 64-aligned.
  auto round64 = [](size_t b) { return (b + 63) / 64 * 64; };
  const size_t q_bytes = round64(static_cast<size_t>(m * k));
  const size_t d_bytes = round64(static_cast<size_t>(m * nb) * sizeof(float));
  const size_t s_bytes = round64(static_cast<size_t>(m * nb) * sizeof(int32_t));
  const size_t need = q_bytes + d_bytes + s_bytes;
  if (buf_.size() < need) buf_ = AlignedBuffer(need);
  acts_.m = m;
  acts_.k = k;
  acts_.q = reinterpret_cast<int8_t*>(buf_.data());
  acts_.d = reinterpret_cast<float*>(buf_.data() + q_bytes);
  acts_.s = reinterpret_cast<int32_t*>(buf_.data() + q_bytes + d_bytes);
  return acts_;
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
