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

void pack_rows(Layout l, const uint8_t* src, int64_t n, int64_t k, uint8_t* dst, int64_t row_begin,
               int64_t row_end) {
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
  for (int64_t grp = row_begin / x16::kRows; grp < g_end; ++grp)
    for (int64_t sb = 0; sb < nsb; ++sb)
      pack_group_superblock(g, f, src, n, k, grp, sb,
                            dst + static_cast<size_t>(grp * nsb + sb) * static_cast<size_t>(g.bytes));
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
