// The weight-type table (quant/weight_terms.h) against blocks computed by hand from the GGUF
// formats (../shared/quant-types.md §2), and the x16 packing read back through packed_terms.
// The fixtures' float64 oracle checks the same tables end to end (quant_fixture_test.cpp).
#include <gtest/gtest.h>

#include <cstring>

#include "base/aligned_buffer.h"
#include "base/fp16.h"
#include "kernel_test_util.h"
#include "kernels/pack/pack.h"
#include "quant/block_formats.h"
#include "quant/weight_terms.h"

namespace xtile {
namespace {
namespace weight_terms_test {  // unity batches: CMakeLists.txt

BlockTerms terms_of(GgmlType type, const void* row, int64_t b) {
  BlockTerms t;
  weight_format(type)->terms(static_cast<const uint8_t*>(row), b, &t);
  return t;
}

TEST(WeightTerms, Q4_KScalesAndMinsOfBothPackings) {
  BlockQ4_K blk{};
  blk.d = fp32_to_fp16(0.5f);
  blk.dmin = fp32_to_fp16(0.25f);
  // Sub-blocks 0..3: 6 bits in the low bits of bytes 0..3 (scales) and 4..7 (mins).
  // Sub-blocks 4..7: low 4 bits in bytes 8..11 (scale low nibble, min high nibble), high 2 bits in
  // the top bits of bytes 0..3 (scales) and 4..7 (mins).
  blk.scales[1] = 0x80 | 37;    // sc_1 = 37; its top bits (10) are sc_5's high bits
  blk.scales[5] = 0x40 | 12;    // m_1 = 12; top bits (01) are m_5's high bits
  blk.scales[9] = 0x7 | 0x3 << 4;  // sc_5 low nibble 7, m_5 low nibble 3
  // Elements: sub-block 1 is the high nibbles of chunk 0 (qs[0..31]); sub-block 5 the high
  // nibbles of chunk 2 (qs[64..95]).
  blk.qs[0] = 0x9 << 4;
  blk.qs[31] = 0xf << 4;
  blk.qs[64 + 2] = 0x4 << 4 | 0x1;  // sub-block 5 element 2 = 4 (low nibble 1 is sub-block 4's)
  const BlockTerms t1 = terms_of(GgmlType::Q4_K, &blk, 1);
  EXPECT_EQ(t1.scale, 0.5f * 37);
  EXPECT_EQ(t1.min, -(0.25f * 12));
  EXPECT_EQ(t1.q[0], 9);
  EXPECT_EQ(t1.q[31], 15);
  EXPECT_EQ(t1.q[1], 0);
  const BlockTerms t5 = terms_of(GgmlType::Q4_K, &blk, 5);
  EXPECT_EQ(t5.scale, 0.5f * (7 | 2 << 4));   // 39
  EXPECT_EQ(t5.min, -(0.25f * (3 | 1 << 4)));  // 19
  EXPECT_EQ(t5.q[2], 4);
  EXPECT_EQ(terms_of(GgmlType::Q4_K, &blk, 4).q[2], 1);
  float out[256];
  dequantize_row(GgmlType::Q4_K, reinterpret_cast<const uint8_t*>(&blk), 256, out);
  EXPECT_EQ(out[32 + 0], 0.5f * 37 * 9 - 0.25f * 12);  // element 0 of sub-block 1
  EXPECT_EQ(out[160 + 2], 0.5f * 39 * 4 - 0.25f * 19);
}

TEST(WeightTerms, Q5_KFifthBitPerSubBlock) {
  BlockQ5_K blk{};
  blk.d = fp32_to_fp16(1.0f);
  blk.scales[3] = 1;  // sc_3 = 1, m_3 = 0
  blk.qs[32 + 5] = 0x3 << 4;  // chunk 1 high nibbles = sub-block 3
  blk.qh[5] = 1 << 3;         // bit 3 of qh[l] is sub-block 3's fifth bit
  const BlockTerms t = terms_of(GgmlType::Q5_K, &blk, 3);
  EXPECT_EQ(t.q[5], 16 + 3);
  EXPECT_EQ(t.scale, 1.0f);
  EXPECT_EQ(terms_of(GgmlType::Q5_K, &blk, 2).q[5], 0);  // same qh byte, bit 2 clear
}

TEST(WeightTerms, Q6_KHalvesQuartersAndSubScales) {
  BlockQ6_K blk{};
  blk.d = fp32_to_fp16(0.125f);
  for (int i = 0; i < 16; ++i) blk.scales[i] = static_cast<int8_t>(i - 8);
  // Second half (elements 128..255), quarter 3 = elements 224..255 = 32-block 7: the high
  // nibbles of ql[64 + 32 + l], high bits qh[32 + l] bits 6-7.
  blk.ql[64 + 32 + 0] = 0xa << 4;
  blk.qh[32 + 0] = 0x2 << 6;  // code 0x2a = 42 → q = 10
  blk.ql[64 + 32 + 17] = 0;   // element 17 of the block: code 0 → q = -32
  const BlockTerms t = terms_of(GgmlType::Q6_K, &blk, 7);
  EXPECT_EQ(t.q[0], 10);
  EXPECT_EQ(t.q[17], -32);
  EXPECT_EQ(t.sub[0], 14 - 8);  // scales[2·7], scales[2·7 + 1]
  EXPECT_EQ(t.sub[1], 15 - 8);
  EXPECT_EQ(t.scale, 0.125f);
  float out[256];
  dequantize_row(GgmlType::Q6_K, reinterpret_cast<const uint8_t*>(&blk), 256, out);
  EXPECT_EQ(out[224], 0.125f * 6 * 10);
  EXPECT_EQ(out[224 + 17], 0.125f * 7 * -32);
  // Block 1 (elements 32..63) = quarter 1 of the first half: low nibbles of ql[32 + l], qh bits 2-3.
  blk.ql[32 + 4] = 0x5;
  blk.qh[4] = 0x3 << 2;
  EXPECT_EQ(terms_of(GgmlType::Q6_K, &blk, 1).q[4], (0x5 | 0x30) - 32);
}

TEST(WeightTerms, Iq4XsScalesAndCodebook) {
  BlockIq4Xs blk{};
  blk.d = fp32_to_fp16(0.5f);
  blk.scales_l[2] = 0x9 << 4;  // sub-block 5: high nibble of scales_l[2]
  blk.scales_h = 0x2 << 10;    // sub-block 5: bits 10-11
  blk.qs[16 * 5 + 3] = 0xf << 4 | 0x0;  // element 3 → code 0, element 19 → code 15
  const BlockTerms t = terms_of(GgmlType::IQ4_XS, &blk, 5);
  EXPECT_EQ(t.scale, 0.5f * ((0x9 | 0x2 << 4) - 32));  // ls = 41
  EXPECT_EQ(t.q[3], -127);
  EXPECT_EQ(t.q[19], 113);
}

TEST(WeightTerms, LegacyTypes) {
  BlockQ5_0 q5{};
  q5.d = fp32_to_fp16(2.0f);
  q5.qs[1] = 0x7 << 4 | 0x2;  // element 1 nibble 2, element 17 nibble 7
  const uint32_t qh = 1u << 17;
  std::memcpy(q5.qh, &qh, 4);
  BlockTerms t = terms_of(GgmlType::Q5_0, &q5, 0);
  EXPECT_EQ(t.q[1], 2 - 16);
  EXPECT_EQ(t.q[17], 7 + 16 - 16);
  BlockQ5_1 q51{};
  q51.m = fp32_to_fp16(-1.5f);
  std::memcpy(q51.qh, &qh, 4);
  q51.qs[1] = 0x7 << 4;
  t = terms_of(GgmlType::Q5_1, &q51, 0);
  EXPECT_EQ(t.q[17], 23);
  EXPECT_EQ(t.min, -1.5f);
  BlockQ4_1 q41{};
  q41.m = fp32_to_fp16(0.75f);
  q41.qs[15] = 0xe1;
  t = terms_of(GgmlType::Q4_1, &q41, 0);
  EXPECT_EQ(t.q[15], 1);
  EXPECT_EQ(t.q[31], 14);
  EXPECT_EQ(t.min, 0.75f);
  BlockIq4Nl nl{};
  nl.qs[0] = 0x8 << 4 | 0x7;
  t = terms_of(GgmlType::IQ4_NL, &nl, 0);
  EXPECT_EQ(t.q[0], -10);
  EXPECT_EQ(t.q[16], 1);
}

// Packing then reading back gives the GGUF row's terms exactly, every row (padding included
// where the group is short) and every block, for every type.
TEST(WeightTerms, X16PackingReadsBackTheSameTerms) {
  const GgmlType types[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,  GgmlType::Q5_0,
                            GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q4_K, GgmlType::Q5_K,
                            GgmlType::Q6_K, GgmlType::IQ4_XS};
  for (GgmlType type : types) {
    const int64_t n = 37, k = 2 * weight_format(type)->super_elems;
    const std::vector<uint8_t> rows = test::random_weights(type, n, k, 5);
    const Layout l = x16_layout(type);
    AlignedBuffer packed(packed_bytes(l, n, k));
    pack_matrix(l, rows.data(), n, k, packed.data());
    EXPECT_EQ(packed_bytes(l, 48, k), rows.size() / n * 48) << "not the GGUF bytes per row";
    const PackedMatrix pm{type, l, n, k, packed.data(), packed.size()};
    const size_t row_bytes = rows.size() / static_cast<size_t>(n);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t b = 0; b < k / 32; ++b) {
        const BlockTerms want = terms_of(type, rows.data() + r * row_bytes, b);
        BlockTerms got;
        packed_terms(pm, r, b, &got);
        ASSERT_EQ(0, std::memcmp(got.q, want.q, 32)) << ggml_type_name(type) << " r" << r;
        ASSERT_EQ(0, std::memcmp(&got.scale, &want.scale, 4)) << ggml_type_name(type);
        ASSERT_EQ(0, std::memcmp(&got.min, &want.min, 4)) << ggml_type_name(type);
        ASSERT_EQ(got.sub[0], want.sub[0]);
        ASSERT_EQ(got.sub[1], want.sub[1]);
      }
  }
}

// pack_rows copies the bytes of the types whose planes are the GGUF bytes rearranged (Q4_0, Q4_1,
// every x16 type): the same bytes as the per-element packer, padding rows included, for
// every type (the others take the per-element path in both), and for a sub-range of rows.
TEST(WeightTerms, CopyingPackersWriteThePerElementPackersBytes) {
  const GgmlType types[] = {GgmlType::Q8_0, GgmlType::Q4_0,   GgmlType::Q4_1, GgmlType::Q5_0,
                            GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q4_K, GgmlType::Q5_K,
                            GgmlType::Q6_K, GgmlType::IQ4_XS};
  for (GgmlType type : types)
    for (int64_t n : {1, 16, 37}) {
      const int64_t k = 3 * weight_format(type)->super_elems;
      const std::vector<uint8_t> rows = test::random_weights(type, n, k, 11 + n);
      const Layout l = x16_layout(type);
      AlignedBuffer fast(packed_bytes(l, n, k)), slow(packed_bytes(l, n, k));
      std::memset(fast.data(), 0xa5, fast.size());  // every byte must be written
      std::memset(slow.data(), 0x5a, slow.size());
      pack_matrix(l, rows.data(), n, k, fast.data());
      pack_rows_per_element(l, rows.data(), n, k, slow.data(), 0, n);
      ASSERT_EQ(0, std::memcmp(fast.data(), slow.data(), fast.size()))
          << ggml_type_name(type) << " n=" << n;
      if (n == 37) {  // rows 16..31 alone: the second group only
        std::memset(fast.data(), 0xa5, fast.size());
        pack_rows(l, rows.data(), n, k, fast.data(), 16, 32);
        const size_t group = fast.size() / 3;
        ASSERT_EQ(0, std::memcmp(fast.data() + group, slow.data() + group, group))
            << ggml_type_name(type);
        ASSERT_EQ(fast.data()[0], 0xa5) << "rows outside the range were written";
      }
    }
}

}  // namespace weight_terms_test
}  // namespace
}  // namespace xtile
