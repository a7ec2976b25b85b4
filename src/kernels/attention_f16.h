// Generation's attention over an fp16 KV cache read in place (ops/attention_tiles.h with
// uint16_t elements): each K and V load converted by VCVTPH2PS as part of the arithmetic,
// instead of a conversion pass into a buffer and a second read of it. Compiled in the ISA
// objects, since F16C is not part of the portable code's flags; the portable attention.cpp picks
// one where the CPU allows it and otherwise converts as before. Same bits as every other path.
#pragma once

#include <cstdint>

#include "ops/attention_tiles.h"

namespace xtile::avx512 {
// The 16-wide (zmm) one-block step for head size hd (64, 128, 256), or null for another size.
// Call only where the avx512 tier is available.
ops::attention_tiles::OneBlockFn attention_f16_one_block(int64_t hd);
}  // namespace xtile::avx512

namespace xtile::avx2 {
// The 8-wide (ymm) version; call only where the avx2 tier (AVX2, FMA, F16C) is available.
ops::attention_tiles::OneBlockFn attention_f16_one_block(int64_t hd);
}  // namespace xtile::avx2
