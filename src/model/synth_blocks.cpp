#include "model/synth_blocks.h"

#include <cstring>

#include "base/error.h"
#include "base/fp16.h"
#include "quant/block_formats.h"
#include "quant/quant.h"

namespace xtile::synth {

namespace {

// A block scale around `base`, varying by ±25% from block to block.
float jitter(Rng& rng, float base) {
  return base * (0.75f + 0.5f * rng.uniform());
}

// 8 random bytes at a time.
void random_bytes(Rng& rng, uint8_t* out, int n) {
  for (int i = 0; i < n; i += 8) {
    uint64_t r = rng.next();
    for (int j = 0; j < 8 && i + j < n; ++j, r >>= 8) out[i + j] = static_cast<uint8_t>(r);
  }
}

template <typename Block>
void store(const Block& b, uint8_t* out, uint64_t index) {
  std::memcpy(out + index * sizeof(Block), &b, sizeof(Block));
}

// Quants symmetric around 0 add no systematic bias to a layer: Q8_0 takes a random byte b as
// b - 128, except b = 0 gives 0 (values -127..127, 0 twice as likely; std 73.47); Q4_0 takes a
// random nibble n as n - 8, except n = 0 gives 0 (values -7..7, 0 twice as likely; std 4.18).
void fill_q8_0(Rng& rng, uint64_t n_blocks, uint8_t* out) {
  constexpr float kBase = kWeightStd / 73.47f;
  for (uint64_t b = 0; b < n_blocks; ++b) {
    BlockQ8_0 blk;
    blk.d = fp32_to_fp16(kBase * (0.75f + 0.5f * rng.uniform()));
    for (int w = 0; w < 4; ++w) {
      uint64_t r = rng.next();
      for (int j = 0; j < 8; ++j, r >>= 8) {
        const int byte = static_cast<int>(r & 0xff);
        blk.qs[8 * w + j] = static_cast<int8_t>(byte == 0 ? 0 : byte - 128);
      }
    }
    store(blk, out, b);
  }
}

void fill_q4_0(Rng& rng, uint64_t n_blocks, uint8_t* out) {
  constexpr float kBase = kWeightStd / 4.18f;
  for (uint64_t b = 0; b < n_blocks; ++b) {
    BlockQ4_0 blk;
    blk.d = fp32_to_fp16(kBase * (0.75f + 0.5f * rng.uniform()));
    for (int w = 0; w < 2; ++w) {
      uint64_t r = rng.next();
      for (int j = 0; j < 8; ++j, r >>= 8) {
        const auto lo = static_cast<uint8_t>((r & 0x0f) ? (r & 0x0f) : 8);
        const auto hi = static_cast<uint8_t>((r & 0xf0) ? ((r >> 4) & 0x0f) : 8);
        blk.qs[8 * w + j] = static_cast<uint8_t>(lo | (hi << 4));
      }
    }
    store(blk, out, b);
  }
}

// Q4_1 / Q5_1: uniform quants 0..15 (std 4.61) / 0..31 (std 9.23) centred by the min m = −7.5·d /
// −15.5·d.
void fill_q4_1(Rng& rng, uint64_t n_blocks, uint8_t* out) {
  for (uint64_t b = 0; b < n_blocks; ++b) {
    BlockQ4_1 blk;
    const float d = jitter(rng, kWeightStd / 4.61f);
    blk.d = fp32_to_fp16(d);
    blk.m = fp32_to_fp16(-7.5f * d);
    random_bytes(rng, blk.qs, 16);
    store(blk, out, b);
  }
}

void fill_q5_1(Rng& rng, uint64_t n_blocks, uint8_t* out) {
  for (uint64_t b = 0; b < n_blocks; ++b) {
    BlockQ5_1 blk;
    const float d = jitter(rng, kWeightStd / 9.23f);
    blk.d = fp32_to_fp16(d);
    blk.m = fp32_to_fp16(-15.5f * d);
    random_bytes(rng, blk.qs, 16);
    random_bytes(rng, blk.qh, 4);
    store(blk, out, b);
  }
}

// Q5_0: q − 16 with a random 5-bit q, except q = 0 gives 16 (values −15..15, 0 twice as likely;
// std 8.80), so that the block has no bias.
void fill_q5_0(Rng& rng, uint64_t n_blocks, uint8_t* out) {
  for (uint64_t b = 0; b < n_blocks; ++b) {
    BlockQ5_0 blk;
    blk.d = fp32_to_fp16(jitter(rng, kWeightStd / 8.80f));
    uint8_t q[32];
    random_bytes(rng, q, 32);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      int lo = q[j] & 31, hi = q[j + 16] & 31;
      if (lo == 0) lo = 16;
      if (hi == 0) hi = 16;
      blk.qs[j] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
      qh |= static_cast<uint32_t>(lo >> 4) << j;
      qh |= static_cast<uint32_t>(hi >> 4) << (j + 16);
    }
    std::memcpy(blk.qh, &qh, 4);
    store(blk, out, b);
  }
}

// IQ4_NL: random codebook indices (RMS of the codebook 67.44, mean −5.9) with a random sign on d,
// which cancels the codebook's mean across blocks.
void fill_iq4_nl(Rng& rng, uint64_t n_blocks, uint8_t* out) {
  for (uint64_t b = 0; b < n_blocks; ++b) {
    BlockIq4Nl blk;
    const float d = jitter(rng, kWeightStd / 67.44f);
    blk.d = fp32_to_fp16((rng.next() & 1) ? d : -d);
    random_bytes(rng, blk.qs, 16);
    store(blk, out, b);
  }
}

// IQ4_XS: random indices; each sub-block's multiplier ls − 32 is ±(16..31) (RMS 23.95), its sign
// random, so sub-blocks differ in scale and the codebook's mean cancels.
void fill_iq4_xs(Rng& rng, uint64_t n_blocks, uint8_t* out) {
  for (uint64_t b = 0; b < n_blocks; ++b) {
    BlockIq4Xs blk;
    blk.d = fp32_to_fp16(jitter(rng, kWeightStd / (23.95f * 67.44f)));
    blk.scales_h = 0;
    std::memset(blk.scales_l, 0, sizeof(blk.scales_l));
    uint64_t r = rng.next();
    for (int j = 0; j < 8; ++j, r >>= 5) {
      const int mag = 16 + static_cast<int>(r & 15);
      const int ls = 32 + ((r & 16) ? mag : -mag);  // 1..16 or 48..63
      blk.scales_l[j / 2] |= static_cast<uint8_t>((ls & 15) << (4 * (j % 2)));
      blk.scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * j));
    }
    random_bytes(rng, blk.qs, 128);
    store(blk, out, b);
  }
}

// Q4_K / Q5_K: 6-bit sub-block scales 32..63 (RMS 47.73), uniform quants 0..nmax, and the mins
// m_j = round(centre·sc_j / ratio) with dmin = ratio·d, so that d·sc_j·q − dmin·m_j is centred.
template <typename Block>
void fill_kquant_scales(Rng& rng, float centre, float ratio, float q_std, Block* blk) {
  const float d = jitter(rng, kWeightStd / (47.73f * q_std));
  blk->d = fp32_to_fp16(d);
  blk->dmin = fp32_to_fp16(ratio * d);
  std::memset(blk->scales, 0, sizeof(blk->scales));
  uint64_t r = rng.next();
  for (int j = 0; j < 8; ++j, r >>= 5) {
    const int sc = 32 + static_cast<int>(r & 31);
    const int m = static_cast<int>(centre * static_cast<float>(sc) / ratio + 0.5f);
    // The packing of kquant_scale_min (block_formats.h), inverted.
    if (j < 4) {
      blk->scales[j] = static_cast<uint8_t>(sc);
      blk->scales[j + 4] = static_cast<uint8_t>(m);
    } else {
      blk->scales[j + 4] = static_cast<uint8_t>((sc & 15) | ((m & 15) << 4));
      blk->scales[j - 4] |= static_cast<uint8_t>((sc >> 4) << 6);
      blk->scales[j] |= static_cast<uint8_t>((m >> 4) << 6);
    }
  }
}

void fill_q4_k(Rng& rng, uint64_t n_blocks, uint8_t* out) {
  for (uint64_t b = 0; b < n_blocks; ++b) {
    BlockQ4_K blk;
    fill_kquant_scales(rng, 7.5f, 8.0f, 4.61f, &blk);
    random_bytes(rng, blk.qs, 128);
    store(blk, out, b);
  }
}

void fill_q5_k(Rng& rng, uint64_t n_blocks, uint8_t* out) {
  for (uint64_t b = 0; b < n_blocks; ++b) {
    BlockQ5_K blk;
    fill_kquant_scales(rng, 15.5f, 16.0f, 9.23f, &blk);
    random_bytes(rng, blk.qh, 32);
    random_bytes(rng, blk.qs, 128);
    store(blk, out, b);
  }
}

// Q6_K: int8 sub-block scales 64..127 (RMS 97.43) and q − 32 with a random 6-bit q, except q = 0
// gives 32 (values −31..31, 0 twice as likely; RMS 18.04).
void fill_q6_k(Rng& rng, uint64_t n_blocks, uint8_t* out) {
  for (uint64_t b = 0; b < n_blocks; ++b) {
    BlockQ6_K blk;
    blk.d = fp32_to_fp16(jitter(rng, kWeightStd / (97.43f * 18.04f)));
    uint8_t sc[16];
    random_bytes(rng, sc, 16);
    for (int s = 0; s < 16; ++s) blk.scales[s] = static_cast<int8_t>(64 + (sc[s] & 63));
    uint8_t q[256];
    random_bytes(rng, q, 256);
    for (uint8_t& v : q) v = (v & 63) ? (v & 63) : 32;
    // The layout of block_formats.h: per half, ql[l] / ql[l + 32] hold elements l, l + 32 (low
    // nibbles) and l + 64, l + 96 (high nibbles); qh[l] their top two bits.
    for (int h = 0; h < 2; ++h) {
      const uint8_t* qq = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        blk.ql[64 * h + l] = static_cast<uint8_t>((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
        blk.ql[64 * h + l + 32] =
            static_cast<uint8_t>((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
        blk.qh[32 * h + l] =
            static_cast<uint8_t>((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) |
                                 ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
      }
    }
    store(blk, out, b);
  }
}

}  // namespace

bool has_random_blocks(GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

void fill_random_blocks(GgmlType type, Rng& rng, uint64_t n_blocks, uint8_t* out) {
  switch (type) {
    case GgmlType::Q8_0:
      fill_q8_0(rng, n_blocks, out);
      return;
    case GgmlType::Q4_0:
      fill_q4_0(rng, n_blocks, out);
      return;
    case GgmlType::Q4_1:
      fill_q4_1(rng, n_blocks, out);
      return;
    case GgmlType::Q5_0:
      fill_q5_0(rng, n_blocks, out);
      return;
    case GgmlType::Q5_1:
      fill_q5_1(rng, n_blocks, out);
      return;
    case GgmlType::Q4_K:
      fill_q4_k(rng, n_blocks, out);
      return;
    case GgmlType::Q5_K:
      fill_q5_k(rng, n_blocks, out);
      return;
    case GgmlType::Q6_K:
      fill_q6_k(rng, n_blocks, out);
      return;
    case GgmlType::IQ4_NL:
      fill_iq4_nl(rng, n_blocks, out);
      return;
    case GgmlType::IQ4_XS:
      fill_iq4_xs(rng, n_blocks, out);
      return;
    default:
      fail("synth has no random blocks of type ", ggml_type_name(type));
  }
}

}  // namespace xtile::synth
