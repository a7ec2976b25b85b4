#include "kernels/amx_emu/tile_emu.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace xtile::tile_emu {

namespace {

// The architectural tile state of one thread. Invariant kept by every instruction below: the
// bytes of a tile outside its configured rows × colsb are zero (LDTILECFG zeroes everything, and
// loads, TDPs and TILEZERO only ever write inside the configured shape, zeroing the rest of each
// row they write). That is what the SDM's write_row_and_zero / zero_upper_rows produce, so the
// instructions need not re-zero the upper rows on every call.
struct State {
  bool configured;
  uint8_t start_row;
  uint8_t rows[kAmxTiles];
  uint16_t colsb[kAmxTiles];
  alignas(64) uint8_t tile[kAmxTiles][kAmxMaxRows][kAmxMaxColsb];
};

// Constant-initialised (all zero: INIT state), trivially destructible: no TLS guard on access.
thread_local State g_state;
thread_local Counters g_counters;

[[noreturn]] __attribute__((format(printf, 2, 3))) void fault(const char* insn, const char* fmt,
                                                              ...) {
  std::fprintf(stderr, "amx-emu: %s: ", insn);
  va_list args;
  va_start(args, fmt);
  std::vfprintf(stderr, fmt, args);
  va_end(args);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  std::abort();
}

// #UD conditions shared by every tile instruction: tiles configured, the register exists and
// was given a shape by the loaded TILECFG.
void check_tile(const char* insn, int t) {
  if (!g_state.configured)
    fault(insn,
          "tiles are not configured (no LDTILECFG with palette 1 on this thread, or "
          "TILERELEASE since)");
  if (t < 0 || t >= kAmxTiles) fault(insn, "tmm%d does not exist (palette 1 has tmm0..tmm7)", t);
  if (g_state.rows[t] == 0)
    fault(insn, "tmm%d is not configured (rows = colsb = 0 in the loaded TILECFG)", t);
}

void reset_state() {
  std::memset(&g_state, 0, sizeof(g_state));
}

void load(const char* insn, int t, const void* base, int64_t stride) {
  check_tile(insn, t);
  ++g_counters.tileloadd;
  const int rows = g_state.rows[t];
  const int colsb = g_state.colsb[t];
  const auto* src = static_cast<const uint8_t*>(base);
  // The SDM restarts an interrupted load at start_row; every tile instruction then clears it.
  for (int r = g_state.start_row; r < rows; ++r)
    std::memcpy(g_state.tile[t][r], src + r * stride, static_cast<size_t>(colsb));
  g_state.start_row = 0;
}

// Sign- or zero-extension of one operand byte to int16 (exact for both: -128..255).
template <bool kSigned>
inline int16_t widen(uint8_t v) {
  if constexpr (kSigned)
    return static_cast<int8_t>(v);
  else
    return v;
}

// Dot product of int16 vectors of a fixed length: GCC turns this into PMADDWD + PADDD at -O3
// with baseline SSE2, which is what keeps the emulated kernels fast enough for the tests.
// Every term is at most 255 * 255 and there are at most 64: the int32 sum cannot overflow.
template <int kLen>
inline int32_t dot(const int16_t* a, const int16_t* b) {
  int32_t s = 0;
  for (int j = 0; j < kLen; ++j) s += static_cast<int32_t>(a[j]) * static_cast<int32_t>(b[j]);
  return s;
}

template <int kLen>
void dp_rows(int c, int rows, int n_cols, const int16_t (*a16)[64], const int16_t (*bt)[64]) {
  for (int m = 0; m < rows; ++m) {
    // Accumulate in uint32: int32 wrap-around is the defined behaviour of the instruction and
    // signed overflow would be undefined in C++.
    uint32_t acc[16];
    std::memcpy(acc, g_state.tile[c][m], sizeof(acc));
    for (int n = 0; n < n_cols; ++n) acc[n] += static_cast<uint32_t>(dot<kLen>(a16[m], bt[n]));
    std::memcpy(g_state.tile[c][m], acc, static_cast<size_t>(n_cols) * 4);
  }
}

template <bool kASigned, bool kBSigned>
void tdp(const char* insn, int c, int a, int b) {
  check_tile(insn, c);
  check_tile(insn, a);
  check_tile(insn, b);
  if (c == a || c == b || a == b)
    fault(insn, "operands must be three different tiles (C = tmm%d, A = tmm%d, B = tmm%d)", c, a,
          b);
  const int rows_c = g_state.rows[c], rows_a = g_state.rows[a], rows_b = g_state.rows[b];
  const int colsb_c = g_state.colsb[c], colsb_a = g_state.colsb[a], colsb_b = g_state.colsb[b];
  if (colsb_c % 4 || colsb_a % 4 || colsb_b % 4)
    fault(insn, "colsb must be a multiple of 4 (C: %d, A: %d, B: %d)", colsb_c, colsb_a, colsb_b);
  if (rows_c != rows_a) fault(insn, "rows(C) = %d but rows(A) = %d", rows_c, rows_a);
  if (colsb_c != colsb_b) fault(insn, "colsb(C) = %d but colsb(B) = %d", colsb_c, colsb_b);
  if (rows_b != colsb_a / 4) fault(insn, "rows(B) = %d but colsb(A) / 4 = %d", rows_b, colsb_a / 4);
  ++g_counters.tdp;
  const int n_cols = colsb_c / 4;
  const int k_bytes = colsb_a;  // = 4 * rows(B)
  g_counters.macs += static_cast<uint64_t>(rows_a) * k_bytes * n_cols;

  // B transposed to one contiguous int16 vector per output column n: bt[n][4k + i] = B[k][4n+i],
  // and A widened row by row; both zero-padded to the dot length so that the inner loop has a
  // constant trip count (32 covers the kernels' single-block A tiles).
  alignas(64) int16_t bt[16][64];
  alignas(64) int16_t a16[16][64];
  const int len = k_bytes <= 32 ? 32 : 64;
  const uint8_t(*tb)[kAmxMaxColsb] = g_state.tile[b];
  const uint8_t(*ta)[kAmxMaxColsb] = g_state.tile[a];
  for (int n = 0; n < n_cols; ++n) {
    for (int k = 0; k < rows_b; ++k)
      for (int i = 0; i < 4; ++i) bt[n][4 * k + i] = widen<kBSigned>(tb[k][4 * n + i]);
    for (int j = k_bytes; j < len; ++j) bt[n][j] = 0;
  }
  for (int m = 0; m < rows_a; ++m) {
    for (int j = 0; j < k_bytes; ++j) a16[m][j] = widen<kASigned>(ta[m][j]);
    for (int j = k_bytes; j < len; ++j) a16[m][j] = 0;
  }
  if (len == 32)
    dp_rows<32>(c, rows_a, n_cols, a16, bt);
  else
    dp_rows<64>(c, rows_a, n_cols, a16, bt);
  g_state.start_row = 0;
}

}  // namespace

void ldtilecfg(const TileConfig& cfg) {
  ++g_counters.ldtilecfg;
  if (cfg.palette_id == 0) {  // INIT state: like TILERELEASE
    reset_state();
    return;
  }
  if (cfg.palette_id != 1)
    fault("ldtilecfg", "palette %d is not supported (0 releases the tiles, 1 is the only palette)",
          cfg.palette_id);
  const auto* bytes = reinterpret_cast<const uint8_t*>(&cfg);
  for (int i = 2; i < 64; ++i) {
    const bool reserved = i < 16 || (i >= 32 && i < 48) || i >= 56;
    if (reserved && bytes[i] != 0)
      fault("ldtilecfg", "reserved byte %d is 0x%02x, must be 0", i, bytes[i]);
  }
  if (cfg.start_row >= kAmxMaxRows)
    fault("ldtilecfg", "start_row = %d, must be below %d", cfg.start_row, kAmxMaxRows);
  for (int t = 0; t < kAmxTiles; ++t) {
    const int rows = cfg.rows[t], colsb = cfg.colsb[t];
    if (rows > kAmxMaxRows) fault("ldtilecfg", "tmm%d: rows = %d exceeds %d", t, rows, kAmxMaxRows);
    if (colsb > kAmxMaxColsb)
      fault("ldtilecfg", "tmm%d: colsb = %d exceeds %d", t, colsb, kAmxMaxColsb);
    if ((rows == 0) != (colsb == 0))
      fault("ldtilecfg", "tmm%d: rows = %d, colsb = %d (an unused tile has both 0)", t, rows,
            colsb);
  }
  reset_state();
  g_state.configured = true;
  g_state.start_row = cfg.start_row;
  std::memcpy(g_state.rows, cfg.rows, sizeof(g_state.rows));
  std::memcpy(g_state.colsb, cfg.colsb, sizeof(g_state.colsb));
}

void sttilecfg(TileConfig* cfg) {
  std::memset(cfg, 0, sizeof(*cfg));
  if (!g_state.configured) return;
  cfg->palette_id = 1;
  cfg->start_row = g_state.start_row;
  std::memcpy(cfg->rows, g_state.rows, sizeof(cfg->rows));
  std::memcpy(cfg->colsb, g_state.colsb, sizeof(cfg->colsb));
}

void tileloadd(int tile, const void* base, int64_t stride) {
  load("tileloadd", tile, base, stride);
}

void tileloaddt1(int tile, const void* base, int64_t stride) {
  load("tileloaddt1", tile, base, stride);
}

void tilestored(int tile, void* base, int64_t stride) {
  check_tile("tilestored", tile);
  ++g_counters.tilestored;
  const int rows = g_state.rows[tile];
  const int colsb = g_state.colsb[tile];
  auto* dst = static_cast<uint8_t*>(base);
  for (int r = g_state.start_row; r < rows; ++r)
    std::memcpy(dst + r * stride, g_state.tile[tile][r], static_cast<size_t>(colsb));
  g_state.start_row = 0;
}

void tilezero(int tile) {
  check_tile("tilezero", tile);
  ++g_counters.tilezero;
  // Rows beyond the configured height are zero already (see State).
  std::memset(g_state.tile[tile], 0, static_cast<size_t>(g_state.rows[tile]) * kAmxMaxColsb);
  g_state.start_row = 0;
}

void tdpbssd(int c, int a, int b) {
  tdp<true, true>("tdpbssd", c, a, b);
}
void tdpbsud(int c, int a, int b) {
  tdp<true, false>("tdpbsud", c, a, b);
}
void tdpbusd(int c, int a, int b) {
  tdp<false, true>("tdpbusd", c, a, b);
}
void tdpbuud(int c, int a, int b) {
  tdp<false, false>("tdpbuud", c, a, b);
}

void tilerelease() {
  ++g_counters.tilerelease;
  reset_state();
}

const Counters& counters() {
  return g_counters;
}
void reset_counters() {
  g_counters = Counters{};
}

const uint8_t* tile_bytes(int tile) {
  return &g_state.tile[tile][0][0];
}

}  // namespace xtile::tile_emu
