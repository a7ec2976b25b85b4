// Software AMX tiles: the tile instructions the amx kernels use, with the semantics of Intel's
// pseudo-code (SDM vol. 2, LDTILECFG / TILELOADD / TILESTORED / TDPB[SU][SU]D / TILEZERO /
// TILERELEASE), on a per-thread register file. This is what the amx-emu tier runs instead of the
// tile unit (DESIGN.md §4, §5), so the amx kernels' own source is testable on any x86-64 CPU.
//
// Where the hardware raises #GP or #UD (invalid TILECFG, tiles not configured, operand shapes that
// do not match), the emulator prints "amx-emu: <instruction>: <reason>" to stderr and aborts: a
// kernel bug must not be hidden by an emulator that is more forgiving than the silicon.
//
// State is thread_local, like the architectural tile state of a logical CPU: each thread must
// configure its own tiles (the kernels do it once per call).
#pragma once

#include <cstdint>

#include "kernels/amx/tile_config.h"

namespace xtile::tile_emu {

// LDTILECFG: palette 0 releases (INIT state: config cleared, tiles zeroed); palette 1 validates
// (reserved bytes zero, rows <= 16, colsb <= 64, an unused tile has rows = colsb = 0) and then
// zeroes every tile. Anything else aborts.
void ldtilecfg(const TileConfig& cfg);
// STTILECFG: the current configuration, all zero when tiles are not configured.
void sttilecfg(TileConfig* cfg);

// TILELOADD / TILELOADDT1 (the non-temporal hint changes nothing here): row r (start_row <= r <
// rows) gets colsb bytes from base + r * stride; the rest of each row and the rows beyond the
// configured height become zero.
void tileloadd(int tile, const void* base, int64_t stride);
void tileloaddt1(int tile, const void* base, int64_t stride);
// TILESTORED: rows start_row..rows-1, colsb bytes each, to base + r * stride.
void tilestored(int tile, void* base, int64_t stride);
void tilezero(int tile);

// C[m][n] += sum_{k < colsb(A)/4} sum_{i < 4} A[m][4k+i] * B[k][4n+i] for m < rows(A),
// n < colsb(C)/4, in int32 with wrap-around; the letters give the signedness of A then B
// (s: int8, u: uint8). Shapes checked as the hardware does: three different tiles, colsb of
// each a multiple of 4, rows(C) = rows(A), colsb(C) = colsb(B), rows(B) = colsb(A)/4.
void tdpbssd(int c, int a, int b);
void tdpbsud(int c, int a, int b);
void tdpbusd(int c, int a, int b);
void tdpbuud(int c, int a, int b);

// TILERELEASE: back to the INIT state; using a tile afterwards aborts until the next LDTILECFG.
void tilerelease();

// Instructions executed by this thread since the last reset: lets tests and docs/AMX.md count
// what a kernel issues per step.
struct Counters {
  uint64_t ldtilecfg = 0;
  uint64_t tileloadd = 0;  // TILELOADD and TILELOADDT1
  uint64_t tilestored = 0;
  uint64_t tilezero = 0;
  uint64_t tdp = 0;  // TDPB[SU][SU]D
  uint64_t tilerelease = 0;
  uint64_t macs = 0;  // int8 multiply-adds done by the TDPs (rows(A) * colsb(A) * colsb(C)/4)
};
const Counters& counters();
void reset_counters();

// The 16 × 64 bytes of a tile register as the instructions left them (tests check the zeroing).
const uint8_t* tile_bytes(int tile);

}  // namespace xtile::tile_emu
