// The 8-wide fp16 in-place one-block step of generation's attention (kernels/attention_f16.h),
// compiled with the avx2 tier's flags (F16C among them).
#include "kernels/attention_f16.h"

namespace xtile::avx2 {
namespace {

using namespace ops;
using namespace ops::attention_tiles;

template <int C>
void one_block_f16(const AttentionShape& sh, const TileVectors& tv, const int64_t* pos,
                   const BlockSource& src, int64_t c, float* const* slots, float* work) {
  tile_one_block<8, C, uint16_t>(sh, tv, pos, src, c, slots, work);
}

}  // namespace

OneBlockFn attention_f16_one_block(int64_t hd) {
  switch (hd) {
    case 64:
      return one_block_f16<4>;
    case 128:
      return one_block_f16<8>;
    case 256:
      return one_block_f16<16>;
    default:
      return nullptr;
  }
}

}  // namespace xtile::avx2
