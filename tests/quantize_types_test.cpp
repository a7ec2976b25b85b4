// The quantizers of Q4_1/Q5_0/Q5_1/Q4_K/Q5_K/Q6_K/IQ4_NL/IQ4_XS (src/quant/quantize_types.h):
// blocks worked out by hand, round-trip error bounds, and the bytes and per-tensor types of
// llama-quantize's own files (../shared/fixtures/quant) reproduced from their F16 sources.
#include "quant/quantize_types.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fp16.h"
#include "gguf/gguf.h"
#include "model/ftype.h"
#include "model/quantize_model.h"
#include "quant/quant.h"
#include "quant/weight_terms.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace quantize_types_test {  // unity batches: CMakeLists.txt

template <typename Block>
std::vector<uint8_t> bytes_of(const Block& b) {
  std::vector<uint8_t> v(sizeof(Block));
  std::memcpy(v.data(), &b, sizeof(Block));
  return v;
}

// ---- Blocks worked out by hand ----

TEST(QuantizeTypes, Q4_1RampOfIntegersIsExact) {
  // min 0, max 15: d = 15/15 = 1, m = 0, q = value.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16);
  BlockQ4_1 b;
  quantize_row_q4_1(x, &b, 32);
  EXPECT_EQ(b.d, 0x3c00);  // 1.0
  EXPECT_EQ(b.m, 0x0000);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
}

TEST(QuantizeTypes, Q4_1MinIsStoredAndQuantsCapAt15) {
  // Values −2 + 0.5·(j % 16): min −2, max 5.5, d = 7.5/15 = 0.5, q = j % 16.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = -2.0f + 0.5f * static_cast<float>(j % 16);
  BlockQ4_1 b;
  quantize_row_q4_1(x, &b, 32);
  EXPECT_EQ(b.d, 0x3800);  // 0.5
  EXPECT_EQ(b.m, 0xc000);  // −2.0
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
}

TEST(QuantizeTypes, Q5_1RampUsesTheFifthBit) {
  // Values 0..31: d = 31/31 = 1, q = j; elements 16..31 have the fifth bit (qh bits 16..31).
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j);
  BlockQ5_1 b;
  quantize_row_q5_1(x, &b, 32);
  EXPECT_EQ(b.d, 0x3c00);
  EXPECT_EQ(b.m, 0x0000);
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  EXPECT_EQ(qh, 0xffff0000u);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
}

TEST(QuantizeTypes, Q5_0MapsTheLargestMagnitudeToMinus16) {
  // Values j − 16: the largest |x| is −16 (element 0), d = −16/−16 = 1, q = x + 16 = j.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  BlockQ5_0 b;
  quantize_row_q5_0(x, &b, 32);
  EXPECT_EQ(b.d, 0x3c00);
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  EXPECT_EQ(qh, 0xffff0000u);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
  // Mirrored (16 − j): the largest |x| is +16, so d = −1 and q = 16 − x = j again.
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(16 - j);
  quantize_row_q5_0(x, &b, 32);
  EXPECT_EQ(b.d, 0xbc00);  // −1.0
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
}

// Scales bytes for eight sub-blocks of scale 63 and min 0: bytes 0-3 hold 63 plus the top bits
// (3) of sub-blocks 4-7's scales, bytes 4-7 the mins (0), bytes 8-11 the low nibbles 15.
constexpr uint8_t kScales63[12] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x0f, 0x0f, 0x0f, 0x0f};

TEST(QuantizeTypes, Q4_KSubBlocksOfSmallIntegers) {
  // Each 32-element sub-block holds 0..15 twice: the fit is exact (scale 1, min 0), so every
  // sub-block's 6-bit scale is 63 and d = fp16(1/63) = 0x2410 (1.015625·2^-6); re-rounding
  // against d·63 = 0.99976 keeps q = value.
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>(i % 16);
  BlockQ4_K b;
  quantize_row_q4_k(x.data(), &b, 256);
  EXPECT_EQ(b.d, 0x2410);
  EXPECT_EQ(b.dmin, 0);
  EXPECT_EQ(0, std::memcmp(b.scales, kScales63, 12));
  // Chunk c holds sub-blocks 2c (low nibbles) and 2c + 1 (high), both 0..15, 0..15.
  for (int i = 0; i < 128; ++i) EXPECT_EQ(b.qs[i], (i % 16) | ((i % 16) << 4)) << i;
}

TEST(QuantizeTypes, Q5_KSubBlocksOfSmallIntegers) {
  // Each sub-block holds 0..31: the same exact fit as above with 5-bit quants.
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>(i % 32);
  BlockQ5_K b;
  quantize_row_q5_k(x.data(), &b, 256);
  EXPECT_EQ(b.d, 0x2410);
  EXPECT_EQ(b.dmin, 0);
  EXPECT_EQ(0, std::memcmp(b.scales, kScales63, 12));
  for (int l = 0; l < 32; ++l) EXPECT_EQ(b.qh[l], l < 16 ? 0x00 : 0xff) << l;
  for (int i = 0; i < 128; ++i) EXPECT_EQ(b.qs[i], (i % 16) | ((i % 16) << 4)) << i;
}

TEST(QuantizeTypes, Q4_KAllZeroBlockIsAllZeroBytes) {
  std::vector<float> x(256, 0.0f);
  BlockQ4_K b;
  std::memset(&b, 0xab, sizeof(b));
  quantize_row_q4_k(x.data(), &b, 256);
  EXPECT_EQ(bytes_of(b), std::vector<uint8_t>(sizeof(b), 0));
}

TEST(QuantizeTypes, Q6_KConstantBlock) {
  // x = 1 everywhere: each 16-element fit gives scale −1/32 (quant −32 · −1/32 = 1; no other
  // candidate fits strictly better). The largest sub-scale maps to −128: d = 1/4096 (0x0c00),
  // every int8 scale −128, every quant −32, stored as 0 (q + 32).
  std::vector<float> x(256, 1.0f);
  BlockQ6_K b;
  quantize_row_q6_k(x.data(), &b, 256);
  EXPECT_EQ(b.d, 0x0c00);
  for (int s = 0; s < 16; ++s) EXPECT_EQ(b.scales[s], -128) << s;
  for (uint8_t v : b.ql) EXPECT_EQ(v, 0);
  for (uint8_t v : b.qh) EXPECT_EQ(v, 0);
  std::vector<float> back(256);
  dequantize_row(GgmlType::Q6_K, reinterpret_cast<const uint8_t*>(&b), 256, back.data());
  for (float v : back) EXPECT_EQ(v, 1.0f);
}

TEST(QuantizeTypes, Q6_KAllZeroBlockIsAllZeroBytes) {
  std::vector<float> x(256, 0.0f);
  BlockQ6_K b;
  std::memset(&b, 0xab, sizeof(b));
  quantize_row_q6_k(x.data(), &b, 256);
  EXPECT_EQ(bytes_of(b), std::vector<uint8_t>(sizeof(b), 0));
}

TEST(QuantizeTypes, Iq4NlCodebookValuesAreFoundExactly) {
  // A block made of the codebook itself: the first guess (extreme −127 mapped to the +113 end,
  // a negative scale) fits badly; the search's candidate 1/d = −127/−127 = 1 fits exactly
  // (d = 1) and no other candidate fits strictly better.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = kIq4Values[j % 16];
  BlockIq4Nl b;
  quantize_row_iq4_nl(x, &b, 32);
  EXPECT_EQ(b.d, 0x3c00);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
}

TEST(QuantizeTypes, Iq4NlAllZeroBlockPicksTheIndexNearestZero) {
  // d = 0, and every element takes index 8 (value +1, the codebook entry nearest 0).
  float x[32] = {};
  BlockIq4Nl b;
  quantize_row_iq4_nl(x, &b, 32);
  EXPECT_EQ(b.d, 0);
  for (uint8_t v : b.qs) EXPECT_EQ(v, 0x88);
}

TEST(QuantizeTypes, Iq4XsCodebookValuesAreFoundExactly) {
  // Eight sub-blocks of codebook values: each fits with scale 1, the superblock scale is
  // d = −1/32 (0xa800) and every 6-bit multiplier is −32 (stored 0), so d·(−32)·q = q.
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = kIq4Values[i % 16];
  BlockIq4Xs b;
  quantize_row_iq4_xs(x.data(), &b, 256);
  EXPECT_EQ(b.d, 0xa800);
  EXPECT_EQ(b.scales_h, 0);
  for (uint8_t v : b.scales_l) EXPECT_EQ(v, 0);
  for (int i = 0; i < 128; ++i) EXPECT_EQ(b.qs[i], (i % 16) | ((i % 16) << 4)) << i;
  std::vector<float> back(256);
  dequantize_row(GgmlType::IQ4_XS, reinterpret_cast<const uint8_t*>(&b), 256, back.data());
  EXPECT_EQ(back, x);
}

TEST(QuantizeTypes, RowLengthsThatTheBlockDoesNotDivideAreErrors) {
  std::vector<float> x(512, 0.0f);
  std::vector<uint8_t> out(4096);
  EXPECT_THROW(quantize_row(GgmlType::Q4_1, x.data(), out.data(), 48), Error);
  EXPECT_THROW(quantize_row(GgmlType::Q4_K, x.data(), out.data(), 224), Error);
  EXPECT_THROW(quantize_row(GgmlType::IQ4_XS, x.data(), out.data(), 288), Error);
  EXPECT_THROW(quantize_row(GgmlType::Q2_K, x.data(), out.data(), 256), Error);
}

// ---- Round trips ----

// Rows like real weights: mostly Gaussian, a few outliers, one all-zero and one constant block.
std::vector<float> weight_like_rows(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  for (int64_t i = 0; i < n; i += 97) x[static_cast<size_t>(i)] *= 8.0f;  // outliers
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(256 + i)] = 0.0f;
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(512 + i)] = 0.013f;
  return x;
}

struct RoundTrip {
  GgmlType type;
  double max_rel_rms;  // bound on RMS(error) / RMS(x) over the rows
};

class QuantizeRoundTrip : public ::testing::TestWithParam<RoundTrip> {};

// Quantize -> dequantize (weight_terms' reference dequantizer) stays within a bound set from each
// format's step (measured on these rows: 4-bit types 0.09-0.11, Q5_0 0.072 (its range is 2·amax),
// Q5_1/Q5_K 0.047, Q6_K 0.027; the bounds leave ~25% room).
TEST_P(QuantizeRoundTrip, ErrorIsWithinTheFormatsStep) {
  const RoundTrip p = GetParam();
  const int64_t k = 4096, rows = 8;
  const std::vector<float> x = weight_like_rows(k * rows, 7);
  const size_t row_bytes = ggml_row_bytes(p.type, k);
  std::vector<uint8_t> q(row_bytes);
  std::vector<float> back(static_cast<size_t>(k));
  double err2 = 0, sig2 = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * k;
    quantize_row(p.type, xr, q.data(), k);
    dequantize_row(p.type, q.data(), k, back.data());
    for (int64_t i = 0; i < k; ++i) {
      const double e = static_cast<double>(back[i]) - xr[i];
      err2 += e * e;
      sig2 += static_cast<double>(xr[i]) * xr[i];
      if (r == 0 && i >= 256 && i < 288) {
        ASSERT_EQ(back[i], 0.0f) << "all-zero block, " << i;
      }
    }
  }
  const double rel = std::sqrt(err2 / sig2);
  EXPECT_LT(rel, p.max_rel_rms) << ggml_type_name(p.type);
  EXPECT_GT(rel, p.max_rel_rms / 8) << ggml_type_name(p.type) << ": suspiciously exact";
}

INSTANTIATE_TEST_SUITE_P(
    Types, QuantizeRoundTrip,
    ::testing::Values(RoundTrip{GgmlType::Q4_1, 0.12}, RoundTrip{GgmlType::Q5_0, 0.09},
                      RoundTrip{GgmlType::Q5_1, 0.06}, RoundTrip{GgmlType::Q4_K, 0.11},
                      RoundTrip{GgmlType::Q5_K, 0.06}, RoundTrip{GgmlType::Q6_K, 0.035},
                      RoundTrip{GgmlType::IQ4_NL, 0.14}, RoundTrip{GgmlType::IQ4_XS, 0.14}),
    [](const auto& info) { return std::string(ggml_type_name(info.param.type)); });

// The 32-element types round each element to the nearest step: |error| is at most half a step
// plus what storing d and m in fp16 moves (2^-11 relative, times up to 32 steps). Q5_0 puts the
// largest |x| at −16 steps, so the other side ends at +15: an element beyond 15.5 steps there
// is clamped to 15 (ggml's MIN(31, ...)).
TEST(QuantizeTypes, LegacyTypesErrPerElementAtMostHalfAStep) {
  const std::vector<float> x = weight_like_rows(4096, 11);
  for (GgmlType type : {GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1}) {
    std::vector<uint8_t> q(ggml_row_bytes(type, 4096));
    std::vector<float> back(4096);
    quantize_row(type, x.data(), q.data(), 4096);
    dequantize_row(type, q.data(), 4096, back.data());
    const WeightFormat* f = weight_format(type);
    int clamped = 0;
    for (int64_t b = 0; b < 4096 / 32; ++b) {
      BlockTerms t;
      f->terms(q.data(), b, &t);
      const float step = std::fabs(t.scale);
      const float slack = 33 * step / 2048 + std::fabs(t.min) / 2048;
      for (int i = 0; i < 32; ++i) {
        const float xi = x[b * 32 + i];
        float bound = step / 2;
        if (type == GgmlType::Q5_0 && std::fabs(xi) > 15.5f * step && t.q[i] == 15) {
          bound = std::fabs(xi) - 15 * step;
          ++clamped;
        }
        const float e = std::fabs(back[b * 32 + i] - xi);
        ASSERT_LE(e, bound + slack) << ggml_type_name(type) << " block " << b << " elem " << i;
      }
    }
    if (type == GgmlType::Q5_0) {
      EXPECT_GT(clamped, 0) << "the clamp case was not exercised";
    }
  }
}

// ---- llama-quantize's files ----

struct FixtureCase {
  const char* model;  // NAME of NAME-f16.gguf
  const char* ftype;  // NAME-<ftype>.gguf was written by llama-quantize from it
};

// Every file llama-quantize wrote beside the F16 sources.
constexpr FixtureCase kFixtureCases[] = {
    {"tiny-qwen3", "q4_0"},        {"tiny-qwen3", "q4_1"},      {"tiny-qwen3", "q5_0"},
    {"tiny-qwen3", "q5_1"},        {"tiny-qwen3", "q8_0"},      {"tiny-qwen3", "q4_k_s"},
    {"tiny-qwen3", "q4_k_m"},      {"tiny-qwen3", "q5_k_m"},    {"tiny-qwen3", "q6_k"},
    {"tiny-qwen3", "iq4_nl"},      {"tiny-qwen3", "iq4_xs"},    {"tiny-llama-tied", "q4_0"},
    {"tiny-llama-tied", "q4_k_m"}, {"tiny-llama-tied", "q6_k"}, {"tiny-llama-tied", "iq4_xs"},
    {"mini-qwen3moe", "q4_0"},     {"mini-qwen3moe", "q4_1"},   {"mini-qwen3moe", "q4_k_m"},
    {"mini-qwen3moe", "q5_k_m"},   {"mini-qwen3moe", "q6_k"},   {"mini-qwen3moe", "iq4_xs"},
    {"mini-qwen3moe", "q8_0"},
};

class QuantizeFixture : public ::testing::TestWithParam<FixtureCase> {};

// xtile quantize on the F16 source gives every tensor llama-quantize's type, and its bytes.
TEST_P(QuantizeFixture, SameTypesAndBytesAsLlamaQuantize) {
  const FixtureCase c = GetParam();
  XTILE_REQUIRE_FIXTURE(src, std::string("quant/") + c.model + "-f16.gguf");
  XTILE_REQUIRE_FIXTURE(ref, std::string("quant/") + c.model + "-" + c.ftype + ".gguf");
  const std::string out = test::temp_path(std::string(c.model) + "-" + c.ftype + ".gguf");
  ThreadPool pool(2);
  quantize_model(src, out, ftype_by_name(c.ftype), pool);
  const gguf::File mine = gguf::File::open(out);
  const gguf::File theirs = gguf::File::open(ref);
  EXPECT_EQ(mine.get_uint("general.file_type"), theirs.get_uint("general.file_type"));
  ASSERT_EQ(mine.tensors().size(), theirs.tensors().size());
  for (const gguf::TensorInfo& t : theirs.tensors()) {
    const gguf::TensorInfo& m = mine.tensor(t.name);
    ASSERT_EQ(ggml_type_name(m.type), ggml_type_name(t.type)) << t.name;
    ASSERT_EQ(m.bytes, t.bytes) << t.name;
    const size_t row = ggml_row_bytes(t.type, t.ne[0]);
    for (uint64_t off = 0; off < t.bytes; off += row)
      ASSERT_EQ(0, std::memcmp(m.data + off, t.data + off, row))
          << t.name << " (" << ggml_type_name(t.type) << ") differs in row " << off / row;
  }
}

INSTANTIATE_TEST_SUITE_P(Llama, QuantizeFixture, ::testing::ValuesIn(kFixtureCases),
                         [](const auto& info) {
                           std::string s = std::string(info.param.model) + "_" + info.param.ftype;
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

// The list above covers every llama-quantize file beside the F16 sources (a new fixture file
// must be added to it).
TEST(QuantizeTypes, EveryFixtureFileIsCompared) {
  XTILE_REQUIRE_FIXTURE(dir, "quant");
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".gguf" || name.ends_with("-f16.gguf")) continue;
    bool listed = false;
    for (const FixtureCase& c : kFixtureCases)
      listed |= name == std::string(c.model) + "-" + c.ftype + ".gguf";
    EXPECT_TRUE(listed) << name << " is not compared";
  }
}

}  // namespace quantize_types_test
}  // namespace
}  // namespace xtile
