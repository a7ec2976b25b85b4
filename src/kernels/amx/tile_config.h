// The 64-byte TILECFG image read by LDTILECFG (Intel SDM, "LDTILECFG"; DESIGN.md §5). Shared by
// the intrinsics back-end, the emulator and the tests, so both back-ends take the same bytes.
// A plain aggregate with no member functions: this header is included by translation units
// built with different ISA flags, and an inline function here could be emitted with AVX-512
// encodings by one of them and picked by the linker for the others.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xtile {

constexpr int kAmxTiles = 8;      // tmm0..tmm7
constexpr int kAmxMaxRows = 16;   // palette 1: rows per tile
constexpr int kAmxMaxColsb = 64;  // palette 1: bytes per row

struct alignas(64) TileConfig {
  uint8_t palette_id;     // 0: release (INIT state), 1: the only palette of AMX-TILE
  uint8_t start_row;      // restart row of an interrupted load/store; 0 when configuring
  uint8_t reserved0[14];  // must be zero
  uint16_t colsb[8];      // bytes per row of tmm0..7 (0 for an unused tile)
  uint8_t reserved1[16];  // must be zero (colsb of tiles 8..15, which palette 1 lacks)
  uint8_t rows[8];        // rows of tmm0..7 (0 for an unused tile)
  uint8_t reserved2[8];   // must be zero (rows of tiles 8..15)
};
static_assert(sizeof(TileConfig) == 64);
static_assert(offsetof(TileConfig, colsb) == 16);
static_assert(offsetof(TileConfig, rows) == 48);

}  // namespace xtile
