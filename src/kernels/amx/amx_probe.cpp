// Ceiling probe of the amx tier (see src/kernels/probes.h): TDPBSSD on full tiles, registers
// only, and on smaller A tiles (fewer rows, a shorter K) to see what a kernel that cannot fill
// the tiles keeps of it (docs/AMX.md, "Tile shape and throughput"). Not a kernel: a measurement.
// Compiled twice like the kernels (amx_kernels.h); only the AMX build is ever timed (the emulator's
// figure would say nothing about a CPU).
#include <cstdint>

#include "kernels/amx/amx_kernels.h"
#include "kernels/amx/tile.h"

namespace xtile::XTILE_AMX_NS {

namespace {
constexpr int kC0 = 0, kC1 = 1, kC2 = 2, kC3 = 3, kA0 = 4, kA1 = 5, kB0 = 6, kB1 = 7;
}  // namespace

int64_t tdp_loop(int64_t iterations, int rows, int k_bytes) {
  // Four independent C tiles (2 A × 2 B), so that each TDPBSSD waits on no other: the tile unit
  // takes one 16 × 64 by 16 × 64 product per 16 cycles, and its latency is longer than that.
  // A: rows × k_bytes, B: k_bytes / 4 rows of 16 columns × 4 bytes, C: rows × 16 int32.
  TileConfig cfg{};
  for (int t : {kC0, kC1, kC2, kC3}) tile::set_shape(cfg, t, rows, 64);
  for (int t : {kA0, kA1}) tile::set_shape(cfg, t, rows, k_bytes);
  for (int t : {kB0, kB1}) tile::set_shape(cfg, t, k_bytes / 4, 64);
  alignas(64) int8_t operand[16 * 64];
  for (int i = 0; i < 16 * 64; ++i) operand[i] = static_cast<int8_t>(i % 7 - 3);
  alignas(64) int32_t c[16 * 16];
  tile::configure(cfg);
  tile::zero<kC0>();
  tile::zero<kC1>();
  tile::zero<kC2>();
  tile::zero<kC3>();
  tile::load<kA0>(operand, 64);
  tile::load<kA1>(operand, 64);
  tile::load<kB0>(operand, 64);
  tile::load<kB1>(operand, 64);
  for (int64_t it = 0; it < iterations; ++it) {
    tile::dpbssd<kC0, kA0, kB0>();
    tile::dpbssd<kC1, kA0, kB1>();
    tile::dpbssd<kC2, kA1, kB0>();
    tile::dpbssd<kC3, kA1, kB1>();
  }
  int64_t sum = 0;
  tile::store<kC0>(c, 64);
  for (int i = 0; i < rows * 16; ++i) sum += c[i];
  tile::store<kC3>(c, 64);
  for (int i = 0; i < rows * 16; ++i) sum += c[i];
  tile::release();
  return sum;
}

}  // namespace xtile::XTILE_AMX_NS
