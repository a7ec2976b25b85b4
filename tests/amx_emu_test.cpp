// The AMX emulator (src/kernels/amx_emu/tile_emu.h), instruction by instruction, against naive
// definitions written here from Intel's pseudo-code; then the amx kernels compiled on it
// (xtile::amx_emu), against ref, on the corners the driver-level exactness test does not reach:
// sub-ranges of rows and columns, strided output, untouched padding, instruction counts per step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fp16.h"
#include "cpu/cpu_caps.h"
#include "kernel_test_util.h"
#include "kernels/amx/amx_kernels.h"
#include "kernels/amx_emu/tile_emu.h"
#include "kernels/pack/pack.h"
#include "kernels/probes.h"
#include "kernels/ref/ref_kernels.h"

// The amx kernel source a third time, in its own namespace: software tiles (no AMX here) with
// the AVX-512 lanes of the AMX build, so that the vector half of the amx tier (unpacking, fp16
// scales, the epilogue, masked stores) is checked bit for bit on any CPU with AVX-512. Only the
// kernel's own functions get the AVX-512 target: every header it includes is included before
// the pragma, so no inline library code of this binary is emitted with AVX-512 encodings.
#include <immintrin.h>

#include <cstddef>
#include <utility>

#include "base/aligned_buffer.h"
#include "kernels/amx/tile_config.h"
#include "kernels/amx_emu/amx_support.h"
#include "kernels/pack/pack.h"
#include "kernels/pack/x16_layout.h"
#include "quant/block_formats.h"
#include "quant/weight_terms.h"
#define XTILE_AMX_HW 0
#define XTILE_AMX_LANES_AVX512 1
#define XTILE_AMX_NS amx_avx512_lanes
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
#include "kernels/amx/amx_gemm.cpp"  // NOLINT(build/include): compiled again on purpose
#pragma GCC pop_options
#undef XTILE_AMX_NS
#undef XTILE_AMX_LANES_AVX512
#undef XTILE_AMX_HW

namespace xtile {
namespace {

namespace emu = tile_emu;

// ---------------------------------------------------------------------------------------------
// Naive definitions (Intel SDM pseudo-code, written for clarity, not speed).

// A tile register image: 16 rows × 64 bytes.
struct TileImage {
  uint8_t b[16][64] = {};
};

TileImage current_tile(int t) {
  TileImage img;
  std::memcpy(img.b, emu::tile_bytes(t), sizeof(img.b));
  return img;
}

// TILELOADD: rows < rows get colsb bytes from base + r * stride, everything else is zero.
TileImage naive_load(int rows, int colsb, const uint8_t* base, int64_t stride) {
  TileImage img;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < colsb; ++c) img.b[r][c] = base[r * stride + c];
  return img;
}

int32_t dword(const TileImage& t, int row, int n) {
  int32_t v;
  std::memcpy(&v, &t.b[row][4 * n], 4);
  return v;
}

// TDPB[SU][SU]D: C[m][n] += sum_k sum_i A[m][4k+i] * B[k][4n+i], int32 wrap-around, computed
// here in int64 and truncated; rows of C beyond rows(A) and bytes beyond colsb(C) end up zero.
TileImage naive_tdp(bool a_signed, bool b_signed, const TileImage& c, const TileImage& a,
                    const TileImage& b, int rows_a, int colsb_a, int colsb_c) {
  auto val = [](uint8_t v, bool s) { return s ? int64_t{static_cast<int8_t>(v)} : int64_t{v}; };
  TileImage out;
  for (int m = 0; m < rows_a; ++m)
    for (int n = 0; n < colsb_c / 4; ++n) {
      int64_t sum = dword(c, m, n);
      for (int k = 0; k < colsb_a / 4; ++k)
        for (int i = 0; i < 4; ++i)
          sum += val(a.b[m][4 * k + i], a_signed) * val(b.b[k][4 * n + i], b_signed);
      const uint32_t wrapped = static_cast<uint32_t>(static_cast<uint64_t>(sum));
      std::memcpy(&out.b[m][4 * n], &wrapped, 4);
    }
  return out;
}

::testing::AssertionResult same_tile(const TileImage& got, const TileImage& want) {
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 64; ++c)
      if (got.b[r][c] != want.b[r][c])
        return ::testing::AssertionFailure() << "byte [" << r << "][" << c << "] is "
                                             << int(got.b[r][c]) << ", want " << int(want.b[r][c]);
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------

struct Shape {
  int tile, rows, colsb;
};

TileConfig config(std::initializer_list<Shape> shapes) {
  TileConfig cfg{};
  cfg.palette_id = 1;
  for (const Shape& s : shapes) {
    cfg.rows[s.tile] = static_cast<uint8_t>(s.rows);
    cfg.colsb[s.tile] = static_cast<uint16_t>(s.colsb);
  }
  return cfg;
}

std::vector<uint8_t> random_bytes(size_t n, std::mt19937& rng) {
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(rng());
  return v;
}

class AmxEmu : public ::testing::Test {
 protected:
  void TearDown() override { emu::tilerelease(); }
};

TEST_F(AmxEmu, LoadAndStoreWithStridesLargerThanTheRow) {
  std::mt19937 rng(1);
  for (int iter = 0; iter < 300; ++iter) {
    const int rows = 1 + static_cast<int>(rng() % 16);
    const int colsb = 1 + static_cast<int>(rng() % 64);
    const int64_t stride = colsb + static_cast<int64_t>(rng() % 200);
    const std::vector<uint8_t> src = random_bytes(static_cast<size_t>(rows * stride), rng);
    const int t = static_cast<int>(rng() % 8);
    emu::ldtilecfg(config({{t, rows, colsb}}));
    if (iter % 2)
      emu::tileloadd(t, src.data(), stride);
    else
      emu::tileloaddt1(t, src.data(), stride);
    ASSERT_TRUE(same_tile(current_tile(t), naive_load(rows, colsb, src.data(), stride)))
        << "rows " << rows << " colsb " << colsb << " stride " << stride;

    // The store writes exactly rows × colsb bytes at the stride and nothing in between.
    const int64_t out_stride = colsb + static_cast<int64_t>(rng() % 100);
    std::vector<uint8_t> out(static_cast<size_t>(16 * out_stride + 64), 0xA5);
    emu::tilestored(t, out.data(), out_stride);
    for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
      const int64_t r = i / out_stride, c = i % out_stride;
      const uint8_t want = (r < rows && c < colsb) ? src[r * stride + c] : 0xA5;
      ASSERT_EQ(out[i], want) << "offset " << i << " rows " << rows << " colsb " << colsb;
    }
  }
}

TEST_F(AmxEmu, LoadZeroesRowsAndBytesBeyondTheConfiguredShape) {
  std::vector<uint8_t> ones(16 * 64, 0xff);
  emu::ldtilecfg(config({{2, 16, 64}}));
  emu::tileloadd(2, ones.data(), 64);
  EXPECT_TRUE(same_tile(current_tile(2), naive_load(16, 64, ones.data(), 64)));
  // Reconfigured to 3 rows of 12 bytes: the same memory now fills only that corner.
  emu::ldtilecfg(config({{2, 3, 12}}));
  emu::tileloadd(2, ones.data(), 64);
  const TileImage img = current_tile(2);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 64; ++c)
      ASSERT_EQ(img.b[r][c], (r < 3 && c < 12) ? 0xff : 0) << r << " " << c;
}

TEST_F(AmxEmu, TileZeroClearsALoadedTile) {
  std::vector<uint8_t> ones(16 * 64, 0x7f);
  emu::ldtilecfg(config({{5, 9, 40}}));
  emu::tileloadd(5, ones.data(), 64);
  emu::tilezero(5);
  EXPECT_TRUE(same_tile(current_tile(5), TileImage{}));
}

TEST_F(AmxEmu, StoreConfigReturnsTheLoadedConfig) {
  TileConfig out{};
  emu::sttilecfg(&out);
  EXPECT_EQ(out.palette_id, 0) << "not configured: all zero";
  const TileConfig cfg = config({{0, 16, 64}, {3, 7, 28}, {7, 1, 4}});
  emu::ldtilecfg(cfg);
  emu::sttilecfg(&out);
  EXPECT_EQ(0, std::memcmp(&out, &cfg, sizeof(cfg)));
}

// All four signedness variants, full and partial tiles, random tile numbers, random C.
TEST_F(AmxEmu, DotProductsMatchTheDefinitionOnEveryShape) {
  std::mt19937 rng(2);
  using Fn = void (*)(int, int, int);
  const struct {
    Fn fn;
    bool a_signed, b_signed;
    const char* name;
  } variants[] = {{emu::tdpbssd, true, true, "tdpbssd"},
                  {emu::tdpbsud, true, false, "tdpbsud"},
                  {emu::tdpbusd, false, true, "tdpbusd"},
                  {emu::tdpbuud, false, false, "tdpbuud"}};
  for (const auto& v : variants) {
    for (int iter = 0; iter < 400; ++iter) {
      // Every corner first (1 row, 4 bytes; 16 rows, 64 bytes), then random shapes.
      int rows_a, colsb_a, colsb_c;
      if (iter == 0)
        rows_a = 1, colsb_a = 4, colsb_c = 4;
      else if (iter == 1)
        rows_a = 16, colsb_a = 64, colsb_c = 64;
      else if (iter == 2)
        rows_a = 16, colsb_a = 32, colsb_c = 64;  // the kernels' shape
      else if (iter == 3)
        rows_a = 1, colsb_a = 32, colsb_c = 64;  // GEMV's shape
      else {
        rows_a = 1 + static_cast<int>(rng() % 16);
        colsb_a = 4 * (1 + static_cast<int>(rng() % 16));
        colsb_c = 4 * (1 + static_cast<int>(rng() % 16));
      }
      int c = static_cast<int>(rng() % 8), a, b;
      do a = static_cast<int>(rng() % 8);
      while (a == c);
      do b = static_cast<int>(rng() % 8);
      while (b == c || b == a);
      emu::ldtilecfg(
          config({{c, rows_a, colsb_c}, {a, rows_a, colsb_a}, {b, colsb_a / 4, colsb_c}}));
      const std::vector<uint8_t> mc = random_bytes(16 * 64, rng), ma = random_bytes(16 * 64, rng),
                                 mb = random_bytes(16 * 64, rng);
      emu::tileloadd(c, mc.data(), 64);
      emu::tileloadd(a, ma.data(), 64);
      emu::tileloadd(b, mb.data(), 64);
      const TileImage want =
          naive_tdp(v.a_signed, v.b_signed, naive_load(rows_a, colsb_c, mc.data(), 64),
                    naive_load(rows_a, colsb_a, ma.data(), 64),
                    naive_load(colsb_a / 4, colsb_c, mb.data(), 64), rows_a, colsb_a, colsb_c);
      v.fn(c, a, b);
      ASSERT_TRUE(same_tile(current_tile(c), want))
          << v.name << " rows " << rows_a << " colsb(A) " << colsb_a << " colsb(C) " << colsb_c;
      // The sources are left as they were.
      ASSERT_TRUE(same_tile(current_tile(a), naive_load(rows_a, colsb_a, ma.data(), 64)));
    }
  }
}

// Accumulators that overflow int32 wrap around (the hardware's behaviour; UB-free here).
TEST_F(AmxEmu, AccumulationWrapsAroundInt32) {
  emu::ldtilecfg(config({{0, 16, 64}, {1, 16, 64}, {2, 16, 64}}));
  std::vector<int32_t> c(16 * 16);
  std::vector<uint8_t> a(16 * 64), b(16 * 64);
  auto run = [&](void (*fn)(int, int, int), int32_t c0, uint8_t av, uint8_t bv) {
    std::fill(c.begin(), c.end(), c0);
    std::fill(a.begin(), a.end(), av);
    std::fill(b.begin(), b.end(), bv);
    emu::tileloadd(0, c.data(), 64);
    emu::tileloadd(1, a.data(), 64);
    emu::tileloadd(2, b.data(), 64);
    fn(0, 1, 2);
    emu::tilestored(0, c.data(), 64);
    return c[37];
  };
  // 0x7fffffff + 64 products of 1 → wraps to INT32_MIN + 63.
  EXPECT_EQ(run(emu::tdpbssd, 0x7fffffff, 1, 1), INT32_MIN + 63);
  // INT32_MIN + 64 × (-128 · 127) → wraps to a large positive value.
  EXPECT_EQ(run(emu::tdpbssd, INT32_MIN, 0x80, 127),
            static_cast<int32_t>(0x80000000u - 64u * 128u * 127u));
  // uint8 · uint8: 64 × 255 · 255 on top of 0x7fff0000.
  EXPECT_EQ(run(emu::tdpbuud, 0x7fff0000, 255, 255),
            static_cast<int32_t>(0x7fff0000u + 64u * 255u * 255u));
  // Mixed signs: u8 255 · s8 -1 and s8 -1 · u8 255 are both -255 per product.
  EXPECT_EQ(run(emu::tdpbusd, 5, 255, 0xff), 5 - 64 * 255);
  EXPECT_EQ(run(emu::tdpbsud, 5, 0xff, 255), 5 - 64 * 255);
}

TEST_F(AmxEmu, ReleaseAndPaletteZeroReturnToInitState) {
  std::vector<uint8_t> ones(16 * 64, 1);
  emu::ldtilecfg(config({{1, 4, 16}}));
  emu::tileloadd(1, ones.data(), 64);
  emu::tilerelease();
  EXPECT_TRUE(same_tile(current_tile(1), TileImage{}));
  TileConfig out{};
  emu::sttilecfg(&out);
  EXPECT_EQ(out.palette_id, 0);
  emu::ldtilecfg(config({{1, 4, 16}}));
  emu::tileloadd(1, ones.data(), 64);
  TileConfig init{};  // palette 0
  emu::ldtilecfg(init);
  EXPECT_TRUE(same_tile(current_tile(1), TileImage{}));
}

TEST_F(AmxEmu, StateIsPerThread) {
  emu::ldtilecfg(config({{0, 2, 8}}));
  bool other_configured = true;
  std::thread([&] {
    TileConfig out{};
    emu::sttilecfg(&out);
    other_configured = out.palette_id != 0;
  }).join();
  EXPECT_FALSE(other_configured);
}

// ---------------------------------------------------------------------------------------------
// Faults: where the hardware raises #GP / #UD the emulator aborts with a message.

class AmxEmuDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TileConfig bad_config(int byte, uint8_t value) {
  TileConfig cfg = config({{0, 16, 64}});
  reinterpret_cast<uint8_t*>(&cfg)[byte] = value;
  return cfg;
}

TEST_F(AmxEmuDeathTest, InvalidConfigsFault) {
  EXPECT_DEATH(emu::ldtilecfg(bad_config(0, 2)), "amx-emu: ldtilecfg: palette 2 is not supported");
  EXPECT_DEATH(emu::ldtilecfg(bad_config(5, 1)), "amx-emu: ldtilecfg: reserved byte 5 is 0x01");
  EXPECT_DEATH(emu::ldtilecfg(bad_config(40, 3)), "amx-emu: ldtilecfg: reserved byte 40");
  EXPECT_DEATH(emu::ldtilecfg(bad_config(60, 1)), "amx-emu: ldtilecfg: reserved byte 60");
  EXPECT_DEATH(emu::ldtilecfg(config({{3, 17, 64}})), "amx-emu: ldtilecfg: tmm3: rows = 17");
  EXPECT_DEATH(emu::ldtilecfg(config({{4, 16, 65}})), "amx-emu: ldtilecfg: tmm4: colsb = 65");
  EXPECT_DEATH(emu::ldtilecfg(config({{1, 0, 4}})), "an unused tile has both 0");
  EXPECT_DEATH(emu::ldtilecfg(config({{1, 4, 0}})), "an unused tile has both 0");
  EXPECT_DEATH(emu::ldtilecfg(bad_config(1, 16)), "amx-emu: ldtilecfg: start_row = 16");
}

TEST_F(AmxEmuDeathTest, UsingTilesWithoutAConfigFaults) {
  uint8_t buf[1024] = {};
  EXPECT_DEATH(emu::tileloadd(0, buf, 64), "amx-emu: tileloadd: tiles are not configured");
  EXPECT_DEATH(emu::tilestored(0, buf, 64), "amx-emu: tilestored: tiles are not configured");
  EXPECT_DEATH(emu::tilezero(0), "amx-emu: tilezero: tiles are not configured");
  EXPECT_DEATH(emu::tdpbssd(0, 1, 2), "amx-emu: tdpbssd: tiles are not configured");
}

TEST_F(AmxEmuDeathTest, ReleaseThenUseFaults) {
  uint8_t buf[1024] = {};
  EXPECT_DEATH(
      {
        emu::ldtilecfg(config({{0, 16, 64}}));
        emu::tileloadd(0, buf, 64);
        emu::tilerelease();
        emu::tileloadd(0, buf, 64);
      },
      "amx-emu: tileloadd: tiles are not configured");
  EXPECT_DEATH(
      {
        emu::ldtilecfg(config({{0, 16, 64}}));
        emu::ldtilecfg(TileConfig{});
        emu::tilezero(0);
      },
      "amx-emu: tilezero: tiles are not configured");
}

TEST_F(AmxEmuDeathTest, UnconfiguredTileFaults) {
  uint8_t buf[1024] = {};
  EXPECT_DEATH(
      {
        emu::ldtilecfg(config({{0, 16, 64}}));
        emu::tileloadd(3, buf, 64);
      },
      "amx-emu: tileloadd: tmm3 is not configured");
  EXPECT_DEATH(
      {
        emu::ldtilecfg(config({{0, 16, 64}, {1, 16, 64}}));
        emu::tdpbssd(0, 1, 2);
      },
      "amx-emu: tdpbssd: tmm2 is not configured");
}

TEST_F(AmxEmuDeathTest, ShapeMismatchesFault) {
  auto tdp_with = [](std::initializer_list<Shape> shapes) {
    emu::ldtilecfg(config(shapes));
    emu::tdpbssd(0, 1, 2);
  };
  EXPECT_DEATH(tdp_with({{0, 8, 64}, {1, 16, 32}, {2, 8, 64}}),
               "amx-emu: tdpbssd: rows.C. = 8 but rows.A. = 16");
  EXPECT_DEATH(tdp_with({{0, 16, 32}, {1, 16, 32}, {2, 8, 64}}),
               "amx-emu: tdpbssd: colsb.C. = 32 but colsb.B. = 64");
  EXPECT_DEATH(tdp_with({{0, 16, 64}, {1, 16, 32}, {2, 16, 64}}),
               "amx-emu: tdpbssd: rows.B. = 16 but colsb.A. / 4 = 8");
  EXPECT_DEATH(tdp_with({{0, 16, 64}, {1, 16, 30}, {2, 7, 64}}),
               "amx-emu: tdpbssd: colsb must be a multiple of 4");
  EXPECT_DEATH(
      {
        emu::ldtilecfg(config({{0, 16, 64}, {1, 16, 64}}));
        emu::tdpbuud(0, 0, 1);
      },
      "amx-emu: tdpbuud: operands must be three different tiles");
}

// ---------------------------------------------------------------------------------------------
// The amx kernels on the emulator.

struct KernelCase {
  GgmlType type;
  int64_t m, n, k;
};

struct Prepared {
  std::vector<uint8_t> gguf;  // GGUF rows (ref reads these)
  AlignedBuffer packed;       // x16 layout (amx reads this)
  ActBuffer acts;
  PackedMatrix ref_w, x16_w;
};

Prepared prepare(const KernelCase& c, uint32_t seed) {
  Prepared p;
  p.gguf = test::random_weights(c.type, c.n, c.k, seed);
  const Layout rows = rows_layout(c.type);
  const Layout x16 = x16_layout(c.type);
  p.packed = AlignedBuffer(packed_bytes(x16, c.n, c.k));
  pack_matrix(x16, p.gguf.data(), c.n, c.k, p.packed.data());
  p.ref_w = {c.type, rows, c.n, c.k, p.gguf.data(), p.gguf.size()};
  p.x16_w = {c.type, x16, c.n, c.k, p.packed.data(), p.packed.size()};
  const std::vector<float> x = test::random_activations(c.m, c.k, seed + 17);
  QuantizedActs& qa = p.acts.resize(c.m, c.k);
  for (int64_t i = 0; i < c.m; ++i) quantize_act_row(ref::quantize_row, x.data() + i * c.k, qa, i);
  return p;
}

MatmulFn emu_kernel(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return amx_emu::q8_0_gemm;
    case GgmlType::Q4_0: return amx_emu::q4_0_gemm;
    case GgmlType::Q4_1: return amx_emu::q4_1_gemm;
    case GgmlType::Q5_0: return amx_emu::q5_0_gemm;
    case GgmlType::Q5_1: return amx_emu::q5_1_gemm;
    case GgmlType::IQ4_NL: return amx_emu::iq4_nl_gemm;
    case GgmlType::Q4_K: return amx_emu::q4_k_gemm;
    case GgmlType::Q5_K: return amx_emu::q5_k_gemm;
    case GgmlType::Q6_K:
      return amx_emu::q6_k_gemm;
    default: return amx_emu::iq4_xs_gemm;
  }
}

// The same kernels built with the AVX-512 lanes of the AMX build (above).
MatmulFn lanes_kernel(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return amx_avx512_lanes::q8_0_gemm;
    case GgmlType::Q4_0: return amx_avx512_lanes::q4_0_gemm;
    case GgmlType::Q4_1: return amx_avx512_lanes::q4_1_gemm;
    case GgmlType::Q5_0: return amx_avx512_lanes::q5_0_gemm;
    case GgmlType::Q5_1: return amx_avx512_lanes::q5_1_gemm;
    case GgmlType::IQ4_NL: return amx_avx512_lanes::iq4_nl_gemm;
    case GgmlType::Q4_K: return amx_avx512_lanes::q4_k_gemm;
    case GgmlType::Q5_K: return amx_avx512_lanes::q5_k_gemm;
    case GgmlType::Q6_K:
      return amx_avx512_lanes::q6_k_gemm;
    default: return amx_avx512_lanes::iq4_xs_gemm;
  }
}

// Every type the tiles run (Q6_K as two byte planes).
const GgmlType kTileTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0,   GgmlType::Q4_1, GgmlType::Q5_0,
                               GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q4_K, GgmlType::Q5_K,
                               GgmlType::Q6_K, GgmlType::IQ4_XS};
MatmulFn ref_kernel(GgmlType) { return ref::matmul; }

// One call on [m0, m1) × [n0, n1) into y with row stride ldy > n: the block equals ref's bytes,
// everything else (other rows, other columns, the stride's gap) keeps its sentinel.
void check_block(const KernelCase& c, uint32_t seed, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                 MatmulFn kernel = nullptr) {
  Prepared p = prepare(c, seed);
  if (!kernel) kernel = emu_kernel(c.type);
  const int64_t ldy = c.n + 7;
  const float sentinel = -12345.5f;
  std::vector<float> want(static_cast<size_t>(c.m * ldy), sentinel), got = want;
  ref_kernel(c.type)(p.ref_w, p.acts.acts(), want.data(), ldy, m0, m1, n0, n1);
  kernel(p.x16_w, p.acts.acts(), got.data(), ldy, m0, m1, n0, n1);
  ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
      << ggml_type_name(c.type) << " M=" << c.m << " N=" << c.n << " K=" << c.k << " rows [" << m0
      << "," << m1 << ") cols [" << n0 << "," << n1 << ")";
}

TEST(AmxEmuKernel, EveryTailHeightAndPartialColumnTile) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0})
    for (int64_t m : {1, 2, 7, 15, 16, 17, 31, 32, 33, 48})
      for (int64_t n : {16, 21, 64, 80, 85})
        check_block({type, m, n, 64}, uint32_t(m * 100 + n), 0, m, 0, n);
}

TEST(AmxEmuKernel, OddAndEvenBlockCounts) {
  // nb = 1, 2, 3, 4 exercise every exit of the two-block software pipeline.
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0})
    for (int64_t k : {32, 64, 96, 128, 11008})
      check_block({type, 18, 40, k}, uint32_t(k), 0, 18, 0, 40);
}

TEST(AmxEmuKernel, EveryTileTypeWithAndWithoutMins) {
  // One shape per type beyond Q8_0/Q4_0 (the sweep of kernel_exact_test.cpp covers the rest):
  // the unpack of each x16 layout into B tiles and the min term of the epilogue.
  for (GgmlType type : kTileTypes)
    for (int64_t m : {1, 17})
      check_block({type, m, 37, 2 * weight_format(type)->super_elems}, uint32_t(m + 3), 0, m, 0,
                  37);
}

TEST(AmxEmuKernel, SubRangesOfRowsAndColumns) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    check_block({type, 40, 100, 96}, 1, 3, 37, 16, 100);  // tail at the matrix end
    check_block({type, 40, 100, 96}, 2, 16, 17, 32, 64);  // one row, two full groups
    check_block({type, 40, 100, 96}, 3, 0, 40, 48, 57);   // one partial group
    check_block({type, 40, 100, 96}, 4, 21, 21, 0, 100);  // empty: nothing written
  }
}

// Panels: K large enough that a panel holds fewer than 4 groups, N spanning several panels.
TEST(AmxEmuKernel, SeveralPanels) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    check_block({type, 20, 200, 32768}, 5, 0, 20, 0, 200);  // 2 groups per 1 MiB panel
    check_block({type, 3, 170, 256}, 6, 0, 3, 0, 170);      // 4 groups per panel, 3 panels
  }
}

TEST(AmxEmuKernel, ConcurrentCallsOnSeparateThreads) {
  const KernelCase c{GgmlType::Q4_0, 21, 96, 128};
  Prepared p = prepare(c, 9);
  std::vector<float> want(static_cast<size_t>(c.m * c.n)), got(want.size());
  ref::matmul(p.ref_w, p.acts.acts(), want.data(), c.n, 0, c.m, 0, c.n);
  std::thread t1(
      [&] { amx_emu::q4_0_gemm(p.x16_w, p.acts.acts(), got.data(), c.n, 0, c.m, 0, 48); });
  std::thread t2(
      [&] { amx_emu::q4_0_gemm(p.x16_w, p.acts.acts(), got.data(), c.n, 0, c.m, 48, 96); });
  t1.join();
  t2.join();
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)));
}

TEST(AmxEmuKernel, RejectsTheWrongLayoutAndBadRanges) {
  Prepared p = prepare({GgmlType::Q8_0, 4, 32, 64}, 3);
  std::vector<float> y(4 * 32);
  EXPECT_THROW(amx_emu::q8_0_gemm(p.ref_w, p.acts.acts(), y.data(), 32, 0, 4, 0, 32), Error);
  EXPECT_THROW(amx_emu::q4_0_gemm(p.x16_w, p.acts.acts(), y.data(), 32, 0, 4, 0, 32), Error);
  EXPECT_THROW(amx_emu::q8_0_gemm(p.x16_w, p.acts.acts(), y.data(), 32, 0, 4, 8, 32), Error);
  EXPECT_THROW(amx_emu::q8_0_gemm(p.x16_w, p.acts.acts(), y.data(), 32, 0, 5, 0, 32), Error);
  EXPECT_THROW(amx_emu::q8_0_gemm(p.x16_w, p.acts.acts(), y.data(), 32, 0, 4, 0, 33), Error);
}

TEST(AmxEmuKernel, Avx512LanesOfTheAmxBuildOnSoftwareTiles) {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq") ||
      !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("avx2"))
    GTEST_SKIP() << "this CPU lacks AVX-512 F/BW/VL/DQ: the AMX build's vector code cannot run";
  for (GgmlType type : kTileTypes) {
    const MatmulFn fn = lanes_kernel(type);
    const int64_t sb = weight_format(type)->super_elems;  // K in multiples of the superblock
    for (int64_t m : {1, 5, 16, 35})
      for (int64_t n : {16, 23, 100})
        for (int64_t k : {sb, 3 * sb, 8 * sb})
          check_block({type, m, n, k}, uint32_t(m + n + k), 0, m, 0, n, fn);
    check_block({type, 40, 100, 3 * sb}, 7, 3, 37, 16, 100, fn);
    check_block({type, 20, 90, 32768}, 8, 0, 20, 0, 90, fn);
  }
}

// What the kernel issues per step (docs/AMX.md): per output tile (16 rows × 16 columns) and K
// block one TILEZERO, two TILELOADD (A, B), one TDPBSSD, one TILESTORED; one LDTILECFG per
// distinct tile height per panel; one TILERELEASE per call. Q6_K's two byte planes: two of each
// but the A load (one A tile for both planes' B tiles).
TEST(AmxEmuKernel, InstructionsPerStep) {
  struct Expect {
    int64_t m, n, k;
    uint64_t out_tiles, ldtilecfg, macs_per_tdp;
  };
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q6_K})
    for (const Expect& e :
         {Expect{32, 32, 256, 4, 1, 16 * 32 * 16}, Expect{1, 48, 128, 3, 1, 1 * 32 * 16},
          Expect{20, 16, 64, 2, 2, 0}, Expect{16, 80, 64, 5, 1, 16 * 32 * 16}}) {
      // K in whole superblocks of the type (Q6_K: 256)
      const int64_t k = std::max<int64_t>(e.k, weight_format(type)->super_elems);
      Prepared p = prepare({type, e.m, e.n, k}, 4);
      std::vector<float> y(static_cast<size_t>(e.m * e.n));
      emu::reset_counters();
      emu_kernel(type)(p.x16_w, p.acts.acts(), y.data(), e.n, 0, e.m, 0, e.n);
      const emu::Counters& n = emu::counters();
      const uint64_t steps = e.out_tiles * static_cast<uint64_t>(k / 32);
      const uint64_t planes = type == GgmlType::Q6_K ? 2 : 1;
      EXPECT_EQ(n.tdp, planes * steps) << ggml_type_name(type) << " M=" << e.m;
      EXPECT_EQ(n.tilezero, planes * steps);
      EXPECT_EQ(n.tileloadd, (1 + planes) * steps);
      EXPECT_EQ(n.tilestored, planes * steps);
      EXPECT_EQ(n.ldtilecfg, e.ldtilecfg);
      EXPECT_EQ(n.tilerelease, 1u);
      if (e.macs_per_tdp) {
        EXPECT_EQ(n.macs, planes * steps * e.macs_per_tdp);
      }
    }
}

// The ceiling probe (amx_probe.cpp) with A tiles of rows × k_bytes does the work
// measure_amx_tile_ops credits it with: 4 TDPBSSD of rows·16·k_bytes multiply-adds per iteration
// on the software tiles, and the value the results give, also on real tiles where the CPU has
// them. Its operand: byte i = i % 7 - 3, read as A (rows × k_bytes) and as B (k_bytes / 4 rows of
// 4 k × 16 columns), both at a 64-byte stride.
void expect_probe_work(int rows, int k_bytes, int64_t iterations) {
  auto op = [](int i) { return i % 7 - 3; };
  int64_t one_tile = 0;  // the sum of the rows × 16 int32 of A · B
  for (int r = 0; r < rows; ++r)
    for (int n = 0; n < 16; ++n)
      for (int kk = 0; kk < k_bytes / 4; ++kk)
        for (int i = 0; i < 4; ++i) one_tile += op(r * 64 + 4 * kk + i) * op(kk * 64 + 4 * n + i);
  const int64_t want = 2 * iterations * one_tile;  // the probe returns the sums of C0 and C3
  emu::reset_counters();
  EXPECT_EQ(amx_emu::tdp_loop(iterations, rows, k_bytes), want);
  const emu::Counters& c = emu::counters();
  EXPECT_EQ(c.tdp, static_cast<uint64_t>(4 * iterations));
  EXPECT_EQ(c.macs, static_cast<uint64_t>(4 * iterations * rows * 16 * k_bytes));
  if (cpu_caps().tier_available(Tier::amx)) {
    EXPECT_EQ(amx::tdp_loop(iterations, rows, k_bytes), want);
  } else {
    std::printf("[probe] amx::tdp_loop(%d x %d) not run: %s\n", rows, k_bytes,
                cpu_caps().tier_unavailable_reason(Tier::amx).c_str());
  }
}

// The amx tier's int8 peak: full 16 × 64 tiles.
TEST(AmxEmuKernel, CeilingProbeRunsFourFullTileProductsPerIteration) {
  expect_probe_work(16, 64, 3);
}

// Tiles the probe does not fill: 8 rows × 16 bytes of K (a Q6_K sub-block for a batch of 8
// decoding rows) and 4 × 32; measure_amx_tile_ops refuses shapes no tile has.
TEST(AmxEmuKernel, CeilingProbeRunsPartialTiles) {
  expect_probe_work(8, 16, 5);
  expect_probe_work(4, 32, 2);
  ThreadPool pool(1);
  for (auto [r, k] : {std::pair{0, 64}, {17, 64}, {16, 0}, {16, 68}, {16, 30}})
    EXPECT_THROW(measure_amx_tile_ops(pool, r, k, 0.01), Error) << r << " x " << k;
}

}  // namespace
}  // namespace xtile
