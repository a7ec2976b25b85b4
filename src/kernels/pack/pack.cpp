#include "kernels/pack/pack.h"

#include <cstring>

#include "base/error.h"
#include "quant/quant.h"

namespace xtile {

namespace {

constexpr size_t kScaleBytes = kInterleave * sizeof(uint16_t);  // 16 fp16 scales
constexpr size_t kQ8QuantBytes = kInterleave * kQK;               // 512: one AMX B tile
constexpr size_t kQ4QuantBytes = kInterleave * kQK / 2;           // 256: two nibbles a byte

size_t x16_block_bytes(Layout l) {
  return kScaleBytes + (l == Layout::q8_0_x16 ? kQ8QuantBytes : kQ4QuantBytes);
}

// One group of 16 rows, one K block: gather each row's weight values (signed) then place them.
void pack_q8_group_block(const uint8_t* src, int64_t n, int64_t nb, int64_t g, int64_t b,
                         uint8_t* out) {
  auto* scales = reinterpret_cast<uint16_t*>(out);
  uint8_t* quants = out + kScaleBytes;
  for (int r = 0; r < kInterleave; ++r) {
    const int64_t row = g * kInterleave + r;
    const BlockQ8_0* blk =
        row < n ? reinterpret_cast<const BlockQ8_0*>(src) + row * nb + b : nullptr;
    scales[r] = blk ? blk->d : 0;
    for (int j = 0; j < 8; ++j)
      for (int i = 0; i < 4; ++i) {
        const int8_t w = blk ? blk->qs[4 * j + i] : 0;
        quants[(j * kInterleave + r) * 4 + i] = static_cast<uint8_t>(w + 128);
      }
  }
}

void pack_q4_group_block(const uint8_t* src, int64_t n, int64_t nb, int64_t g, int64_t b,
                         uint8_t* out) {
  auto* scales = reinterpret_cast<uint16_t*>(out);
  uint8_t* quants = out + kScaleBytes;
  for (int r = 0; r < kInterleave; ++r) {
    const int64_t row = g * kInterleave + r;
    const BlockQ4_0* blk =
        row < n ? reinterpret_cast<const BlockQ4_0*>(src) + row * nb + b : nullptr;
    scales[r] = blk ? blk->d : 0;
    for (int j = 0; j < 4; ++j)
      for (int i = 0; i < 4; ++i) {
        // GGUF: element e < 16 is the low nibble of qs[e], element e + 16 the high nibble.
        const int e = 4 * j + i;
        const uint8_t lo = blk ? (blk->qs[e] & 0x0f) : 8;
        const uint8_t hi = blk ? (blk->qs[e] >> 4) : 8;
        quants[(j * kInterleave + r) * 4 + i] = static_cast<uint8_t>(lo | (hi << 4));
      }
  }
}

}  // namespace

Layout layout_for(GgmlType type, Tier tier) {
  const bool rows = tier == Tier::ref;
  switch (type) {
    case GgmlType::Q8_0: return rows ? Layout::q8_0_rows : Layout::q8_0_x16;
    case GgmlType::Q4_0: return rows ? Layout::q4_0_rows : Layout::q4_0_x16;
    default: fail("no packed layout for weight type ", ggml_type_name(type));
  }
}

GgmlType layout_type(Layout l) {
  return (l == Layout::q8_0_rows || l == Layout::q8_0_x16) ? GgmlType::Q8_0 : GgmlType::Q4_0;
}

bool is_interleaved(Layout l) { return l == Layout::q8_0_x16 || l == Layout::q4_0_x16; }

int64_t layout_row_step(Layout l) { return is_interleaved(l) ? kInterleave : 1; }

size_t packed_bytes(Layout l, int64_t n, int64_t k) {
  if (k % kQK != 0) fail("cannot pack a matrix with K = ", k, ": not a multiple of 32");
  const int64_t nb = k / kQK;
  if (!is_interleaved(l)) return static_cast<size_t>(n) * ggml_row_bytes(layout_type(l), k);
  const int64_t groups = (n + kInterleave - 1) / kInterleave;
  return static_cast<size_t>(groups * nb) * x16_block_bytes(l);
}

void pack_rows(Layout l, const uint8_t* src, int64_t n, int64_t k, uint8_t* dst, int64_t row_begin,
               int64_t row_end) {
  if (k % kQK != 0) fail("cannot pack a matrix with K = ", k, ": not a multiple of 32");
  const int64_t nb = k / kQK;
  if (!is_interleaved(l)) {
    const size_t row_bytes = ggml_row_bytes(layout_type(l), k);
    std::memcpy(dst + row_begin * row_bytes, src + row_begin * row_bytes,
                static_cast<size_t>(row_end - row_begin) * row_bytes);
    return;
  }
  const size_t block_bytes = x16_block_bytes(l);
  const int64_t g_end = (row_end + kInterleave - 1) / kInterleave;
  for (int64_t g = row_begin / kInterleave; g < g_end; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* out = dst + static_cast<size_t>(g * nb + b) * block_bytes;
      if (l == Layout::q8_0_x16) pack_q8_group_block(src, n, nb, g, b, out);
      else pack_q4_group_block(src, n, nb, g, b, out);
    }
}

}  // namespace xtile
