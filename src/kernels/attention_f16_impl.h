// The body of kernels/attention_f16.h's functions, included by each ISA object that defines one
// (avx512: W = 16, avx2: W = 8), inside that object's namespace.
#pragma once

#include "kernels/attention_f16.h"

namespace xtile::attention_f16_impl {
namespace {  // each ISA object compiles its own copy (ops/attention_tiles.h)

template <int W, int C>
void one_block_f16(const ops::AttentionShape& sh, const ops::attention_tiles::TileVectors& tv,
                   const int64_t* pos, const ops::attention_tiles::BlockSource& src, int64_t c,
                   float* const* slots, float* work) {
  ops::attention_tiles::tile_one_block<W, C, uint16_t>(sh, tv, pos, src, c, slots, work);
}

// The W-wide step for head size hd, or null for a size without one.
template <int W>
ops::attention_tiles::OneBlockFn one_block_f16_for(int64_t hd) {
  switch (hd) {
    case 64:
      return one_block_f16<W, 4>;
    case 128:
      return one_block_f16<W, 8>;
    case 256:
      return one_block_f16<W, 16>;
    default:
      return nullptr;
  }
}

}  // namespace
}  // namespace xtile::attention_f16_impl
