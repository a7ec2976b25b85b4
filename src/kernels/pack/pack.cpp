#include "kernels/pack/pack.h"

#include <cstring>

#include "base/error.h"
#include "base/fp16.h"
#include "kernels/pack/x16_layout.h"
#include "quant/block_formats.h"
#include "quant/quant.h"

namespace xtile {

namespace {

struct LayoutInfo {
  Layout layout;
  GgmlType type;
  bool x16;
  std::string_view name;
};

constexpr LayoutInfo kLayouts[] = {
    {Layout::q8_0_rows, GgmlType::Q8_0, false, "q8_0_rows"},
    {Layout::q8_0_x16, GgmlType::Q8_0, true, "q8_0_x16"},
    {Layout::q4_0_rows, GgmlType::Q4_0, false, "q4_0_rows"},
    {Layout::q4_0_x16, GgmlType::Q4_0, true, "q4_0_x16"},
    {Layout::q4_1_rows, GgmlType::Q4_1, false, "q4_1_rows"},
    {Layout::q4_1_x16, GgmlType::Q4_1, true, "q4_1_x16"},
    {Layout::q5_0_rows, GgmlType::Q5_0, false, "q5_0_rows"},
    {Layout::q5_0_x16, GgmlType::Q5_0, true, "q5_0_x16"},
    {Layout::q5_1_rows, GgmlType::Q5_1, false, "q5_1_rows"},
    {Layout::q5_1_x16, GgmlType::Q5_1, true, "q5_1_x16"},
    {Layout::iq4_nl_rows, GgmlType::IQ4_NL, false, "iq4_nl_rows"},
    {Layout::iq4_nl_x16, GgmlType::IQ4_NL, true, "iq4_nl_x16"},
    {Layout::q4_k_rows, GgmlType::Q4_K, false, "q4_K_rows"},
    {Layout::q4_k_x16, GgmlType::Q4_K, true, "q4_K_x16"},
    {Layout::q5_k_rows, GgmlType::Q5_K, false, "q5_K_rows"},
    {Layout::q5_k_x16, GgmlType::Q5_K, true, "q5_K_x16"},
    {Layout::q6_k_rows, GgmlType::Q6_K, false, "q6_K_rows"},
    {Layout::q6_k_x16, GgmlType::Q6_K, true, "q6_K_x16"},
    {Layout::iq4_xs_rows, GgmlType::IQ4_XS, false, "iq4_xs_rows"},
    {Layout::iq4_xs_x16, GgmlType::IQ4_XS, true, "iq4_xs_x16"},
};

const LayoutInfo& info(Layout l) {
  for (const LayoutInfo& i : kLayouts)
    if (i.layout == l) return i;
  fail("unknown packed layout ", static_cast<uint32_t>(l));
}

const LayoutInfo& find(GgmlType type, bool x16) {
  for (const LayoutInfo& i : kLayouts)
    if (i.type == type && i.x16 == x16) return i;
  fail("no packed layout for weight type ", ggml_type_name(type));
}

const x16::Geometry& geometry_of(GgmlType type) {
  const x16::Geometry* g = x16::geometry(type);
  if (!g) fail("no x16 layout for weight type ", ggml_type_name(type));
  return *g;
}

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Where element e (0..31) of a 32-block of row r sits in a nibble plane: the byte, and whether
// it is the high nibble (x16_layout.h).
struct PlaneSlot {
  int byte;  // jj·64 + t, t = r·4 + i
  int high;  // 0: low nibble, 1: high nibble
};
inline PlaneSlot plane_slot(int r, int e) {
  const int jj = (e % 16) / 4, i = e % 4;
  return {jj * 64 + r * 4 + i, e / 16};
}

// The byte offset of a GGUF block field inside one GGUF block of the type.
struct HeaderFields {
  int d;      // fp16 d
  int dmin;   // fp16 dmin / m, or -1
};
HeaderFields header_fields(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: return {0, 2};
    case GgmlType::Q6_K: return {offsetof(BlockQ6_K, d), -1};
    default: return {0, -1};
  }
}

// Code of an element from its integer value q (x16_layout.h "Codes").
inline uint8_t code_of(const x16::Geometry& g, int q) {
  if (!g.codebook) return static_cast<uint8_t>(q - g.code_offset);
  for (int c = 0; c < 16; ++c)
    if (kIq4Values[c] == q) return static_cast<uint8_t>(c);
  return 0;  // unreachable: terms only produce codebook values
}

// The 6-bit values of a K-quant / IQ4_XS row's superblock, into the pack6 value array.
void six_bit_values(GgmlType t, const uint8_t* blk, int r, uint8_t* values) {
  if (t == GgmlType::IQ4_XS) {
    const auto& b = *reinterpret_cast<const BlockIq4Xs*>(blk);
    for (int j = 0; j < 8; ++j) values[16 * j + r] = static_cast<uint8_t>(iq4xs_scale(b, j));
  } else {
    const uint8_t* scales = blk + 4;  // d, dmin, then scales[12] (Q4_K and Q5_K alike)
    for (int j = 0; j < 8; ++j)
      kquant_scale_min(scales, j, &values[16 * j + r], &values[128 + 16 * j + r]);
  }
}

void write_pack6(const uint8_t* v, int n, uint8_t* out) {
  std::memset(out, 0, static_cast<size_t>(n / 2 + n / 4));
  for (int p = 0; p < n / 2; ++p) out[p] = static_cast<uint8_t>((v[p] & 15) | (v[p + n / 2] & 15) << 4);
  for (int p = 0; p < n / 4; ++p)
    for (int s = 0; s < 4; ++s) out[n / 2 + p] |= static_cast<uint8_t>((v[p + s * n / 4] >> 4 & 3) << (2 * s));
}

// One group-superblock of an x16 layout: rows 16g..16g+15 (rows >= n are padding), superblock sb.
void pack_group_superblock(const x16::Geometry& g, const WeightFormat& f, const uint8_t* src,
                           int64_t n, int64_t k, int64_t grp, int64_t sb, uint8_t* out) {
  std::memset(out, 0, static_cast<size_t>(g.bytes));
  const size_t row_bytes = ggml_row_bytes(f.type, static_cast<uint64_t>(k));
  const HeaderFields hf = header_fields(f.type);
  const int blocks = g.elems / 32;
  uint8_t six_values[256] = {};
  for (int r = 0; r < x16::kRows; ++r) {
    const int64_t row = grp * x16::kRows + r;
    const bool real = row < n;
    const uint8_t* grow = src + static_cast<size_t>(row) * row_bytes;
    const uint8_t* blk = grow + static_cast<size_t>(sb) * static_cast<size_t>(f.super_bytes);
    if (real) {
      std::memcpy(out + 2 * r, blk + hf.d, 2);
      if (g.dmin >= 0) std::memcpy(out + g.dmin + 2 * r, blk + hf.dmin, 2);
      if (g.six >= 0) six_bit_values(f.type, blk, r, six_values);
      if (g.sub >= 0) {
        const auto& q6 = *reinterpret_cast<const BlockQ6_K*>(blk);
        for (int i = 0; i < 16; ++i)
          out[g.sub + i * 16 + r] = static_cast<uint8_t>(q6.scales[i]);
      }
    }
    for (int j = 0; j < blocks; ++j) {
      BlockTerms t;
      if (real) f.terms(grow, sb * blocks + j, &t);
      uint8_t* quants = out + g.quants + j * g.quant_bytes;
      uint8_t* high = g.high >= 0 ? out + g.high + j * g.high_bytes : nullptr;
      for (int e = 0; e < 32; ++e) {
        // Padding rows: the code of q = 0 (codebook types: code 0; their scale is 0 anyway).
        const uint8_t code = real ? code_of(g, t.q[e]) : (g.codebook ? 0 : code_of(g, 0));
        if (g.quant_bytes == 512) {  // Q8_0: byte (j·16 + r)·4 + i, j = e / 4
          quants[((e / 4) * 16 + r) * 4 + e % 4] = code;
          continue;
        }
        const PlaneSlot s = plane_slot(r, e);
        quants[s.byte] |= static_cast<uint8_t>((code & 15) << (4 * s.high));
        if (g.high_bytes == 64) {  // fifth bit: mask 2·jj + h, bit t
          const int jj = s.byte / 64, t = s.byte % 64;
          high[(2 * jj + s.high) * 8 + t / 8] |= static_cast<uint8_t>((code >> 4 & 1) << (t % 8));
        } else if (g.high_bytes == 128) {  // two bits: row jj/2, nibble jj%2, pair by h
          const int jj = s.byte / 64, t = s.byte % 64;
          high[(jj / 2) * 64 + t] |= static_cast<uint8_t>((code >> 4 & 3) << (4 * (jj % 2) + 2 * s.high));
        }
      }
    }
  }
  if (g.six >= 0) write_pack6(six_values, g.six_count, out + g.six);
}

// Copying packers for the types whose x16 planes are the GGUF bytes rearranged, without decoding
// an element: Q4_0, Q4_1 and IQ4_NL (the nibble plane's 4-byte words are the GGUF qs words:
// byte (jj·16 + r)·4 + i = qs[4·jj + i], low nibble element 4·jj + i, high 16 + 4·jj + i, the
// codes being the stored nibbles), Q8_0 (the same words of int8, + 128 as a xor), Q4_K (each
// GGUF qs word pair splits into the words of two 32-blocks with nibble masks) and Q6_K (its ql
// words as Q4_K's, its qh words shifted and masked into the two-high-bits plane); IQ4_XS's
// 32-blocks are Q4_0's nibble order (qs[16j ..]) with codebook indices as codes; Q5_0 / Q5_1 /
// Q5_K are Q4_0 / Q4_1 / Q4_K plus their fifth bits gathered into the masks. Every x16 type. The
// per-element packer above is their specification: the same bytes, padding rows included (tested).
// Loading a model is mostly this step: per element it ran at ~0.5 GB/s of weights on the Zen 5 VM.
uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void store_u32(uint8_t* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}

// Row r's 16 GGUF nibble bytes into a nibble plane.
void copy_nibble_words(const uint8_t* qs, int r, uint8_t* plane) {
  for (int jj = 0; jj < 4; ++jj) std::memcpy(plane + (jj * 16 + r) * 4, qs + 4 * jj, 4);
}

// Row r's fifth bits of one 32-block into its 8 masks (x16_layout.h): mask 2·jj + h, bits
// 4r .. 4r + 3 (byte r / 2 of the little-endian u64, nibble r % 2) are the fifth bits of
// elements 16h + 4jj + i, i = 0..3; bit(e) gives element e's. The masks start zeroed.
template <typename BitOf>
void fifth_bit_nibbles(uint8_t* masks, int r, BitOf bit) {
  for (int jj = 0; jj < 4; ++jj)
    for (int h = 0; h < 2; ++h) {
      uint32_t nib = 0;
      for (int i = 0; i < 4; ++i) nib |= static_cast<uint32_t>(bit(16 * h + 4 * jj + i)) << i;
      masks[(2 * jj + h) * 8 + r / 2] |= static_cast<uint8_t>(nib << (4 * (r % 2)));
    }
}

// Q6_K row r of a group-superblock. Block j (32 elements) is half h = j / 4, quarter q = j % 4
// of ggml's layout: element l's low 4 bits are nibble q / 2 of ql[64h + 32(q % 2) + l], its
// bits 4-5 are bits 2q..2q+1 of qh[32h + l]; its sub-scales are scales[2j], scales[2j + 1].
void pack_q6_k_row(const BlockQ6_K& b, int r, const x16::Geometry& g, uint8_t* out) {
  for (int i = 0; i < 16; ++i) out[g.sub + i * 16 + r] = static_cast<uint8_t>(b.scales[i]);
  for (int j = 0; j < 8; ++j) {
    const int h = j / 4, q = j % 4;
    const uint8_t* ql = b.ql + 64 * h + 32 * (q % 2);
    const uint8_t* qh = b.qh + 32 * h;
    uint32_t high[2] = {0, 0};  // the two 64-byte rows of the two-high-bits plane
    for (int jj = 0; jj < 4; ++jj) {
      const uint32_t a = load_u32(ql + 4 * jj), c = load_u32(ql + 16 + 4 * jj);
      store_u32(out + g.quants + j * g.quant_bytes + (jj * 16 + r) * 4,
                q < 2 ? (a & 0x0f0f0f0fu) | (c & 0x0f0f0f0fu) << 4
                      : (a >> 4 & 0x0f0f0f0fu) | (c & 0xf0f0f0f0u));
      const uint32_t bits_lo = load_u32(qh + 4 * jj) >> (2 * q) & 0x03030303u;
      const uint32_t bits_hi = load_u32(qh + 16 + 4 * jj) >> (2 * q) & 0x03030303u;
      high[jj / 2] |= (bits_lo | bits_hi << 2) << (4 * (jj % 2));
    }
    for (int p = 0; p < 2; ++p)
      store_u32(out + g.high + j * g.high_bytes + p * 64 + r * 4, high[p]);
  }
}

bool pack_group_superblock_copy(const x16::Geometry& g, const uint8_t* src, int64_t n,
                                size_t row_bytes, int64_t grp, int64_t sb, uint8_t* out) {
  const GgmlType t = g.type;
  const bool nibbles32 = t == GgmlType::Q4_0 || t == GgmlType::Q4_1 || t == GgmlType::IQ4_NL;
  const bool fifth32 = t == GgmlType::Q5_0 || t == GgmlType::Q5_1;
  const HeaderFields hf = header_fields(t);
  const size_t block_bytes = ggml_traits(t).type_size;
  // Each field is written whole below except the scales of padding rows and the pack6 bytes.
  std::memset(out, 0, static_cast<size_t>(g.quants));
  uint8_t six_values[256] = {};
  for (int r = 0; r < x16::kRows; ++r) {
    const int64_t row = grp * x16::kRows + r;
    if (row >= n) {
      // Padding: scales 0 (above), codes of q = 0 (pack_group_superblock's choice).
      const uint8_t zero = g.codebook ? 0 : static_cast<uint8_t>(-g.code_offset);
      const uint32_t word = zero == 128 ? 0x80808080u : (zero & 15) * 0x11111111u;
      if (g.high_bytes == 64)  // the fifth bit of the zero code (Q5_0's 16) in all 8 masks
        for (int j = 0; j < g.elems / 32; ++j)
          fifth_bit_nibbles(out + g.high + j * 64, r, [&](int) { return zero >> 4 & 1; });
      const int words = g.quant_bytes / 64;  // per 32-block and row
      for (int j = 0; j < g.elems / 32; ++j) {
        for (int w = 0; w < words; ++w)
          store_u32(out + g.quants + j * g.quant_bytes + (w * 16 + r) * 4, word);
        if (g.high_bytes == 128)  // Q6_K: bits 4-5 of code 32 (= 2) for both nibbles, rows 0, 1
          for (int p = 0; p < 2; ++p)
            store_u32(out + g.high + j * 128 + p * 64 + r * 4, 0xaaaaaaaau);
      }
      continue;
    }
    const uint8_t* blk =
        src + static_cast<size_t>(row) * row_bytes + static_cast<size_t>(sb) * block_bytes;
    std::memcpy(out + 2 * r, blk + hf.d, 2);
    if (g.dmin >= 0) std::memcpy(out + g.dmin + 2 * r, blk + hf.dmin, 2);  // Q4_1 m, Q4_K dmin
    if (nibbles32) {
      copy_nibble_words(blk + (t == GgmlType::Q4_1 ? 4 : 2), r, out + g.quants);
    } else if (fifth32) {
      const int qh_at = t == GgmlType::Q5_1 ? 4 : 2;  // after d (and m)
      const uint32_t qh = load_u32(blk + qh_at);      // bit e: the fifth bit of element e
      copy_nibble_words(blk + qh_at + 4, r, out + g.quants);
      fifth_bit_nibbles(out + g.high, r, [&](int e) { return qh >> e & 1; });
    } else if (t == GgmlType::Q8_0) {
      for (int w = 0; w < 8; ++w)
        store_u32(out + g.quants + (w * 16 + r) * 4, load_u32(blk + 2 + 4 * w) ^ 0x80808080u);
    } else if (t == GgmlType::Q6_K) {
      pack_q6_k_row(*reinterpret_cast<const BlockQ6_K*>(blk), r, g, out);
    } else if (t == GgmlType::IQ4_XS) {
      six_bit_values(t, blk, r, six_values);
      const uint8_t* qs = reinterpret_cast<const BlockIq4Xs*>(blk)->qs;
      for (int j = 0; j < 8; ++j)
        copy_nibble_words(qs + 16 * j, r, out + g.quants + j * g.quant_bytes);
    } else if (t == GgmlType::Q4_K || t == GgmlType::Q5_K) {
      // chunk c is qs[32c .. 32c + 31]: low nibbles block 2c, high nibbles block 2c + 1
      six_bit_values(t, blk, r, six_values);
      const bool q5 = t == GgmlType::Q5_K;
      const uint8_t* qs = q5 ? reinterpret_cast<const BlockQ5_K*>(blk)->qs
                             : reinterpret_cast<const BlockQ4_K*>(blk)->qs;
      if (q5) {  // element l of block j: bit j of qh[l]
        const uint8_t* qh = reinterpret_cast<const BlockQ5_K*>(blk)->qh;
        for (int j = 0; j < 8; ++j)
          fifth_bit_nibbles(out + g.high + j * 64, r, [&](int l) { return qh[l] >> j & 1; });
      }
      for (int c = 0; c < 4; ++c)
        for (int jj = 0; jj < 4; ++jj) {
          const uint32_t a = load_u32(qs + 32 * c + 4 * jj);       // elements 4jj + i
          const uint32_t b = load_u32(qs + 32 * c + 16 + 4 * jj);  // elements 16 + 4jj + i
          const int at = (jj * 16 + r) * 4;
          store_u32(out + g.quants + (2 * c) * g.quant_bytes + at,
                    (a & 0x0f0f0f0fu) | (b & 0x0f0f0f0fu) << 4);
          store_u32(out + g.quants + (2 * c + 1) * g.quant_bytes + at,
                    (a >> 4 & 0x0f0f0f0fu) | (b & 0xf0f0f0f0u));
        }
    } else {
      return false;  // a type without a copying packer: the per-element one
    }
  }
  if (g.six >= 0) write_pack6(six_values, g.six_count, out + g.six);
  return true;
}

}  // namespace

std::string_view layout_name(Layout l) {
  for (const LayoutInfo& i : kLayouts)
    if (i.layout == l) return i.name;
  return "unknown";
}

Layout rows_layout(GgmlType type) { return find(type, false).layout; }
Layout x16_layout(GgmlType type) { return find(type, true).layout; }

Layout layout_for(GgmlType type, Tier tier) {
  return tier == Tier::ref ? rows_layout(type) : x16_layout(type);
}

GgmlType layout_type(Layout l) { return info(l).type; }

bool is_interleaved(Layout l) { return info(l).x16; }

int64_t layout_row_step(Layout l) { return is_interleaved(l) ? x16::kRows : 1; }

size_t packed_bytes(Layout l, int64_t n, int64_t k) {
  const LayoutInfo& li = info(l);
  const WeightFormat* f = weight_format(li.type);
  if (k < 0 || k % f->super_elems != 0)
    fail("cannot pack a ", ggml_type_name(li.type), " matrix with K = ", k, ": not a multiple of ",
         f->super_elems);
  if (!li.x16) return static_cast<size_t>(n) * ggml_row_bytes(li.type, static_cast<uint64_t>(k));
  const int64_t groups = (n + x16::kRows - 1) / x16::kRows;
  const x16::Geometry& g = geometry_of(li.type);
  return static_cast<size_t>(groups * (k / g.elems)) * static_cast<size_t>(g.bytes);
}

namespace {

void pack_rows_with(Layout l, const uint8_t* src, int64_t n, int64_t k, uint8_t* dst,
                    int64_t row_begin, int64_t row_end, bool per_element) {
  const LayoutInfo& li = info(l);
  packed_bytes(l, n, k);  // validates k
  if (!li.x16) {
    const size_t row_bytes = ggml_row_bytes(li.type, static_cast<uint64_t>(k));
    std::memcpy(dst + row_begin * row_bytes, src + row_begin * row_bytes,
                static_cast<size_t>(row_end - row_begin) * row_bytes);
    return;
  }
  const x16::Geometry& g = geometry_of(li.type);
  const WeightFormat& f = *weight_format(li.type);
  const int64_t nsb = k / g.elems;
  const int64_t g_end = (row_end + x16::kRows - 1) / x16::kRows;
  const size_t row_bytes = ggml_row_bytes(li.type, static_cast<uint64_t>(k));
  for (int64_t grp = row_begin / x16::kRows; grp < g_end; ++grp)
    for (int64_t sb = 0; sb < nsb; ++sb) {
      uint8_t* out = dst + static_cast<size_t>(grp * nsb + sb) * static_cast<size_t>(g.bytes);
      if (per_element || !pack_group_superblock_copy(g, src, n, row_bytes, grp, sb, out))
        pack_group_superblock(g, f, src, n, k, grp, sb, out);
    }
}

}  // namespace

void pack_rows(Layout l, const uint8_t* src, int64_t n, int64_t k, uint8_t* dst, int64_t row_begin,
               int64_t row_end) {
  pack_rows_with(l, src, n, k, dst, row_begin, row_end, /*per_element=*/false);
}

void pack_rows_per_element(Layout l, const uint8_t* src, int64_t n, int64_t k, uint8_t* dst,
                           int64_t row_begin, int64_t row_end) {
  pack_rows_with(l, src, n, k, dst, row_begin, row_end, /*per_element=*/true);
}

void packed_terms(const PackedMatrix& w, int64_t row, int64_t b, BlockTerms* t) {
  const LayoutInfo& li = info(w.layout);
  if (!li.x16) {
    const size_t row_bytes = ggml_row_bytes(li.type, static_cast<uint64_t>(w.k));
    weight_format(li.type)->terms(w.data + static_cast<size_t>(row) * row_bytes, b, t);
    return;
  }
  const x16::Geometry& g = geometry_of(li.type);
  const int64_t nsb = w.k / g.elems;
  const int blocks = g.elems / 32;
  const int r = static_cast<int>(row % x16::kRows);
  const int j = static_cast<int>(b % blocks);
  const uint8_t* gsb =
      w.data + static_cast<size_t>((row / x16::kRows) * nsb + b / blocks) * static_cast<size_t>(g.bytes);
  const uint8_t* quants = gsb + g.quants + j * g.quant_bytes;
  const uint8_t* high = g.high >= 0 ? gsb + g.high + j * g.high_bytes : nullptr;
  for (int e = 0; e < 32; ++e) {
    int code;
    if (g.quant_bytes == 512) {
      code = quants[((e / 4) * 16 + r) * 4 + e % 4];
    } else {
      const PlaneSlot s = plane_slot(r, e);
      code = (quants[s.byte] >> (4 * s.high)) & 15;
      const int jj = s.byte / 64, tt = s.byte % 64;
      if (g.high_bytes == 64) code |= ((high[(2 * jj + s.high) * 8 + tt / 8] >> (tt % 8)) & 1) << 4;
      if (g.high_bytes == 128)
        code |= ((high[(jj / 2) * 64 + tt] >> (4 * (jj % 2) + 2 * s.high)) & 3) << 4;
    }
    t->q[e] = g.codebook ? kIq4Values[code] : static_cast<int8_t>(code + g.code_offset);
  }
  const float d = fp16_to_fp32(load_u16(gsb + 2 * r));
  t->min = 0.0f;
  t->sub[0] = t->sub[1] = 1;
  switch (li.type) {
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
      t->scale = d;
      t->min = fp16_to_fp32(load_u16(gsb + g.dmin + 2 * r));
      break;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {
      const int sc = x16::unpack6(gsb + g.six, 256, 16 * j + r);
      const int m = x16::unpack6(gsb + g.six, 256, 128 + 16 * j + r);
      t->scale = d * static_cast<float>(sc);
      t->min = -(fp16_to_fp32(load_u16(gsb + g.dmin + 2 * r)) * static_cast<float>(m));
      break;
    }
    case GgmlType::Q6_K:
      t->scale = d;
      t->sub[0] = static_cast<int8_t>(gsb[g.sub + (2 * j) * 16 + r]);
      t->sub[1] = static_cast<int8_t>(gsb[g.sub + (2 * j + 1) * 16 + r]);
      break;
    case GgmlType::IQ4_XS:
      t->scale = d * static_cast<float>(x16::unpack6(gsb + g.six, 128, 16 * j + r) - 32);
      break;
    default: t->scale = d; break;
  }
}

}  // namespace xtile
