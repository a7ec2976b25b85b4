#include "quant/weight_terms.h"

#include <cstring>

#include "base/error.h"
#include "base/fp16.h"
#include "quant/block_formats.h"
#include "quant/quant.h"

namespace xtile {

namespace {

template <typename Block>
const Block& block_at(const uint8_t* row, int64_t i) {
  return reinterpret_cast<const Block*>(row)[i];
}

// Elements i < 16 of a 32-block are the low nibbles of qs[i], elements i + 16 the high ones.
inline int nibble32(const uint8_t* qs, int i) {
  return i < 16 ? (qs[i] & 0x0f) : (qs[i - 16] >> 4);
}

// Q5_0 / Q5_1: bit i of the little-endian u32 qh is element i's fifth bit.
inline int fifth_bit(const uint8_t* qh, int i) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  return static_cast<int>((h >> i) & 1u);
}

void terms_q8_0(const uint8_t* row, int64_t b, BlockTerms* t) {
  const auto& blk = block_at<BlockQ8_0>(row, b);
  std::memcpy(t->q, blk.qs, 32);
  t->scale = fp16_to_fp32(blk.d);
}

void terms_q4_0(const uint8_t* row, int64_t b, BlockTerms* t) {
  const auto& blk = block_at<BlockQ4_0>(row, b);
  for (int i = 0; i < 32; ++i) t->q[i] = static_cast<int8_t>(nibble32(blk.qs, i) - 8);
  t->scale = fp16_to_fp32(blk.d);
}

void terms_q4_1(const uint8_t* row, int64_t b, BlockTerms* t) {
  const auto& blk = block_at<BlockQ4_1>(row, b);
  for (int i = 0; i < 32; ++i) t->q[i] = static_cast<int8_t>(nibble32(blk.qs, i));
  t->scale = fp16_to_fp32(blk.d);
  t->min = fp16_to_fp32(blk.m);
}

void terms_q5_0(const uint8_t* row, int64_t b, BlockTerms* t) {
  const auto& blk = block_at<BlockQ5_0>(row, b);
  for (int i = 0; i < 32; ++i)
    t->q[i] = static_cast<int8_t>((nibble32(blk.qs, i) | fifth_bit(blk.qh, i) << 4) - 16);
  t->scale = fp16_to_fp32(blk.d);
}

void terms_q5_1(const uint8_t* row, int64_t b, BlockTerms* t) {
  const auto& blk = block_at<BlockQ5_1>(row, b);
  for (int i = 0; i < 32; ++i)
    t->q[i] = static_cast<int8_t>(nibble32(blk.qs, i) | fifth_bit(blk.qh, i) << 4);
  t->scale = fp16_to_fp32(blk.d);
  t->min = fp16_to_fp32(blk.m);
}

void terms_iq4_nl(const uint8_t* row, int64_t b, BlockTerms* t) {
  const auto& blk = block_at<BlockIq4Nl>(row, b);
  for (int i = 0; i < 32; ++i) t->q[i] = kIq4Values[nibble32(blk.qs, i)];
  t->scale = fp16_to_fp32(blk.d);
}

// Q4_K / Q5_K sub-block j of superblock `blk`: scale d·sc_j, min −dmin·m_j (both exact: an
// 11-bit fp16 significand times a 6-bit integer).
template <typename Block>
void kquant_scales(const Block& blk, int j, BlockTerms* t) {
  uint8_t sc, m;
  kquant_scale_min(blk.scales, j, &sc, &m);
  t->scale = fp16_to_fp32(blk.d) * static_cast<float>(sc);
  t->min = -(fp16_to_fp32(blk.dmin) * static_cast<float>(m));
}

void terms_q4_k(const uint8_t* row, int64_t b, BlockTerms* t) {
  const auto& blk = block_at<BlockQ4_K>(row, b / 8);
  const int j = static_cast<int>(b % 8);
  const uint8_t* qs = blk.qs + 32 * (j / 2);
  const int shift = 4 * (j % 2);
  for (int i = 0; i < 32; ++i) t->q[i] = static_cast<int8_t>((qs[i] >> shift) & 0x0f);
  kquant_scales(blk, j, t);
}

void terms_q5_k(const uint8_t* row, int64_t b, BlockTerms* t) {
  const auto& blk = block_at<BlockQ5_K>(row, b / 8);
  const int j = static_cast<int>(b % 8);
  const uint8_t* qs = blk.qs + 32 * (j / 2);
  const int shift = 4 * (j % 2);
  for (int i = 0; i < 32; ++i)
    t->q[i] = static_cast<int8_t>(((qs[i] >> shift) & 0x0f) | ((blk.qh[i] >> j) & 1) << 4);
  kquant_scales(blk, j, t);
}

void terms_q6_k(const uint8_t* row, int64_t b, BlockTerms* t) {
  const auto& blk = block_at<BlockQ6_K>(row, b / 8);
  const int jb = static_cast<int>(b % 8);
  const int half = jb / 4, quarter = jb % 4;
  const uint8_t* ql = blk.ql + 64 * half + 32 * (quarter % 2);
  const uint8_t* qh = blk.qh + 32 * half;
  for (int l = 0; l < 32; ++l) {
    const int lo = (ql[l] >> (4 * (quarter / 2))) & 0x0f;
    const int hi = (qh[l] >> (2 * quarter)) & 3;
    t->q[l] = static_cast<int8_t>((lo | hi << 4) - 32);
  }
  t->scale = fp16_to_fp32(blk.d);
  t->sub[0] = blk.scales[2 * jb];
  t->sub[1] = blk.scales[2 * jb + 1];
}

void terms_iq4_xs(const uint8_t* row, int64_t b, BlockTerms* t) {
  const auto& blk = block_at<BlockIq4Xs>(row, b / 8);
  const int j = static_cast<int>(b % 8);
  for (int i = 0; i < 32; ++i) t->q[i] = kIq4Values[nibble32(blk.qs + 16 * j, i)];
  t->scale = fp16_to_fp32(blk.d) * static_cast<float>(iq4xs_scale(blk, j) - 32);
}

constexpr WeightFormat kFormats[] = {
    {GgmlType::Q8_0, 32, 34, false, false, -128, 127, terms_q8_0},
    {GgmlType::Q4_0, 32, 18, false, false, -8, 7, terms_q4_0},
    {GgmlType::Q4_1, 32, 20, true, false, 0, 15, terms_q4_1},
    {GgmlType::Q5_0, 32, 22, false, false, -16, 15, terms_q5_0},
    {GgmlType::Q5_1, 32, 24, true, false, 0, 31, terms_q5_1},
    {GgmlType::IQ4_NL, 32, 18, false, false, -127, 113, terms_iq4_nl},
    {GgmlType::Q4_K, 256, 144, true, false, 0, 15, terms_q4_k},
    {GgmlType::Q5_K, 256, 176, true, false, 0, 31, terms_q5_k},
    {GgmlType::Q6_K, 256, 210, false, true, -32, 31, terms_q6_k},
    {GgmlType::IQ4_XS, 256, 136, false, false, -127, 113, terms_iq4_xs},
};

}  // namespace

const WeightFormat* weight_format(GgmlType type) {
  for (const WeightFormat& f : kFormats)
    if (f.type == type) return &f;
  return nullptr;
}

const char* quantized_weight_names() {
  return "q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q4_K, q5_K, q6_K and iq4_xs";
}

void dequantize_terms(const WeightFormat& f, const BlockTerms& t, float* out) {
  if (f.sub16) {
    for (int i = 0; i < 32; ++i)
      out[i] = (t.scale * static_cast<float>(t.sub[i / 16])) * static_cast<float>(t.q[i]);
  } else if (f.has_min) {
    for (int i = 0; i < 32; ++i) out[i] = t.scale * static_cast<float>(t.q[i]) + t.min;
  } else {
    for (int i = 0; i < 32; ++i) out[i] = t.scale * static_cast<float>(t.q[i]);
  }
}

void dequantize_row(GgmlType type, const uint8_t* row, int64_t k, float* out) {
  const WeightFormat* f = weight_format(type);
  if (!f) fail("cannot dequantize weight type ", ggml_type_name(type));
  if (k < 0 || k % f->super_elems != 0)
    fail("dequantize ", ggml_type_name(type), ": row length ", k, " is not a multiple of ",
         f->super_elems);
  BlockTerms t;
  for (int64_t b = 0; b < k / 32; ++b) {
    f->terms(row, b, &t);
    dequantize_terms(*f, t, out + b * 32);
  }
}

}  // namespace xtile
