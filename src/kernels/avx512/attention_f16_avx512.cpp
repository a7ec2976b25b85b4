// The 16-wide fp16 in-place one-block step of generation's attention (kernels/attention_f16.h),
// compiled with the avx512 tier's flags (F16C among them).
#include "kernels/attention_f16_impl.h"

namespace xtile::avx512 {

ops::attention_tiles::OneBlockFn attention_f16_one_block(int64_t hd) {
  return attention_f16_impl::one_block_f16_for<16>(hd);
}

}  // namespace xtile::avx512
