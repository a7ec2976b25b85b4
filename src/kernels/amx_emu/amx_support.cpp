#include "kernels/amx_emu/amx_support.h"

#include "base/error.h"
#include "kernels/pack/pack.h"

namespace xtile::amx_support {

void check_call(const PackedMatrix& w, Layout layout, const QuantizedActs& x, int64_t m0,
                int64_t m1, int64_t n0, int64_t n1, std::string_view kernel) {
  check_layout(w, layout, kernel);
  if (w.type != layout_type(layout))
    fail("kernel ", kernel, ": a ", ggml_type_name(w.type), " tensor tagged with layout ",
         layout_name(layout));
  if (w.k != x.k) fail("kernel ", kernel, ": weight K = ", w.k, " but activations have K = ", x.k);
  if (w.k <= 0 || w.k % 32 != 0)
    fail("kernel ", kernel, ": K = ", w.k, " is not a positive multiple of 32");
  if (m0 < 0 || m0 > m1 || m1 > x.m)
    fail("kernel ", kernel, ": rows [", m0, ", ", m1, ") outside the ", x.m, " activation rows");
  if (n0 < 0 || n0 > n1 || n1 > w.n)
    fail("kernel ", kernel, ": columns [", n0, ", ", n1, ") outside the ", w.n, " weight rows");
  if (n0 % kInterleave != 0)
    fail("kernel ", kernel, ": n0 = ", n0, " is not a multiple of ", kInterleave);
}

}  // namespace xtile::amx_support
