// The tile interface the amx kernels are written against, once, with two back-ends chosen by
// XTILE_AMX_HW (set per target by the root CMakeLists.txt):
//   1: the AMX instructions (this translation unit is built with -mamx-tile -mamx-int8);
//   0: the software tiles of src/kernels/amx_emu (baseline x86-64, runs anywhere).
// Everything here lives in xtile::amx or xtile::amx_emu (XTILE_AMX_NS): the two builds of the
// kernels are linked into one library, and inline functions with one name but two bodies
// would break the one-definition rule (the linker keeps one copy, possibly the AMX one).
//
// Tile numbers are template arguments because the instructions encode the register number.
//
// Why inline asm rather than GCC 12's _tile_* macros: the macros paste the tile number into the
// asm text with the preprocessor (a template parameter would give "%tmmT"), and _tile_loadd /
// _tile_loadconfig do not tell the compiler which memory they read (no memory operand, no
// "memory" clobber; ldtilecfg declares an 8-byte read of a 64-byte config), so stores that only
// the tile unit reads could be reordered or removed. The asm below is the same instruction with
// a "memory" clobber where memory is read or written, and with the config as a 64-byte operand.
#pragma once

#include <cstdint>

#include "kernels/amx/tile_config.h"

#ifndef XTILE_AMX_HW
#error "XTILE_AMX_HW must be defined (1: AMX instructions, 0: amx-emu software tiles)"
#endif

// The namespace may be overridden by a test that compiles the kernel source a third time.
#ifndef XTILE_AMX_NS
#if XTILE_AMX_HW
#define XTILE_AMX_NS amx
#else
#define XTILE_AMX_NS amx_emu
#endif
#endif

#if !XTILE_AMX_HW
#include "kernels/amx_emu/tile_emu.h"
#endif

namespace xtile::XTILE_AMX_NS::tile {

// Sets tile t's shape in a config (palette 1); tiles left untouched stay unused (0 × 0).
inline void set_shape(TileConfig& cfg, int t, int rows, int colsb) {
  cfg.palette_id = 1;
  cfg.rows[t] = static_cast<uint8_t>(rows);
  cfg.colsb[t] = static_cast<uint16_t>(colsb);
}

#if XTILE_AMX_HW

inline void configure(const TileConfig& cfg) {
  asm volatile("ldtilecfg %0" ::"m"(cfg));
}

inline void release() {
  asm volatile("tilerelease" ::);
}

template <int T>
inline void load(const void* base, int64_t stride) {
  static_assert(T >= 0 && T < kAmxTiles);
  asm volatile("{tileloadd\t(%0,%1,1), %%tmm%c2|tileloadd\t%%tmm%c2, [%0+%1*1]}" ::"r"(base),
               "r"(stride), "n"(T)
               : "memory");
}

// TILELOADDT1: same result, hints that the data will not be reused (no cache allocation).
template <int T>
inline void stream_load(const void* base, int64_t stride) {
  static_assert(T >= 0 && T < kAmxTiles);
  asm volatile("{tileloaddt1\t(%0,%1,1), %%tmm%c2|tileloaddt1\t%%tmm%c2, [%0+%1*1]}" ::"r"(base),
               "r"(stride), "n"(T)
               : "memory");
}

template <int T>
inline void store(void* base, int64_t stride) {
  static_assert(T >= 0 && T < kAmxTiles);
  asm volatile("{tilestored\t%%tmm%c2, (%0,%1,1)|tilestored\t[%0+%1*1], %%tmm%c2}" ::"r"(base),
               "r"(stride), "n"(T)
               : "memory");
}

template <int T>
inline void zero() {
  static_assert(T >= 0 && T < kAmxTiles);
  asm volatile("tilezero\t%%tmm%c0" ::"n"(T));
}

// C += A · B with int8/uint8 operands (s: signed, u: unsigned; first letter A, second B).
#define XTILE_AMX_TDP(fn, insn)                                                                   \
  template <int C, int A, int B>                                                                  \
  inline void fn() {                                                                              \
    static_assert(C != A && C != B && A != B, "TDP operands must be different tiles");            \
    static_assert(C >= 0 && C < kAmxTiles && A >= 0 && A < kAmxTiles && B >= 0 && B < kAmxTiles); \
    asm volatile("{" insn "\t%%tmm%c2, %%tmm%c1, %%tmm%c0|" insn                                  \
                 "\t%%tmm%c0, %%tmm%c1, %%tmm%c2}" ::"n"(C),                                      \
                 "n"(A), "n"(B));                                                                 \
  }
XTILE_AMX_TDP(dpbssd, "tdpbssd")
XTILE_AMX_TDP(dpbsud, "tdpbsud")
XTILE_AMX_TDP(dpbusd, "tdpbusd")
XTILE_AMX_TDP(dpbuud, "tdpbuud")
#undef XTILE_AMX_TDP

#else  // the emulator

inline void configure(const TileConfig& cfg) {
  tile_emu::ldtilecfg(cfg);
}
inline void release() {
  tile_emu::tilerelease();
}

template <int T>
inline void load(const void* base, int64_t stride) {
  static_assert(T >= 0 && T < kAmxTiles);
  tile_emu::tileloadd(T, base, stride);
}

template <int T>
inline void stream_load(const void* base, int64_t stride) {
  static_assert(T >= 0 && T < kAmxTiles);
  tile_emu::tileloaddt1(T, base, stride);
}

template <int T>
inline void store(void* base, int64_t stride) {
  static_assert(T >= 0 && T < kAmxTiles);
  tile_emu::tilestored(T, base, stride);
}

template <int T>
inline void zero() {
  static_assert(T >= 0 && T < kAmxTiles);
  tile_emu::tilezero(T);
}

template <int C, int A, int B>
inline void dpbssd() {
  static_assert(C != A && C != B && A != B, "TDP operands must be different tiles");
  tile_emu::tdpbssd(C, A, B);
}
template <int C, int A, int B>
inline void dpbsud() {
  static_assert(C != A && C != B && A != B, "TDP operands must be different tiles");
  tile_emu::tdpbsud(C, A, B);
}
template <int C, int A, int B>
inline void dpbusd() {
  static_assert(C != A && C != B && A != B, "TDP operands must be different tiles");
  tile_emu::tdpbusd(C, A, B);
}
template <int C, int A, int B>
inline void dpbuud() {
  static_assert(C != A && C != B && A != B, "TDP operands must be different tiles");
  tile_emu::tdpbuud(C, A, B);
}

#endif  // XTILE_AMX_HW

}  // namespace xtile::XTILE_AMX_NS::tile
