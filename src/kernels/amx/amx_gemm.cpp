// GEMM of every 32-wide weight type on AMX tiles (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K,
// Q5_K, IQ4_XS), bit-exact with the ref tier (quant/weight_terms.h). Written once against tile.h
// and lanes.h and compiled twice (see amx_kernels.h). docs/AMX.md has the blocking, the
// per-step cycle budget and what the emulator executes. Q6_K's 16-element sub-scales would need
// half-empty tiles; the amx tier runs it on AVX-512 VNNI instead (registry.cpp).
//
// Shape of the work for one call, rows [m0, m1) × columns [n0, n1):
//   for each weight panel (up to 4 groups of 16 weight rows × all of K, <= 1 MiB):
//     unpack it once into per-thread scratch: the values q as int8 in B-tile order + fp32
//     scales and mins (L2-resident)
//     for each row tile of X (16 rows; the last may be shorter):
//       for each group of the panel:          output tile: rows × 16 columns
//         for each K block b (ascending):     C = A_b · B_b (TDPBSSD gives isum exactly),
//                                             acc[i] = fma(float(C[i]), dw * dx[i][b], acc[i])
//                                             (+ acc[i] = fma(wm, sd[i][b], acc[i]) with mins)
// The float accumulators of an output tile (16 zmm) stay in registers for the whole K loop.
// Block b+1's TILEZERO/loads/TDPBSSD are issued before block b's TILESTORED and epilogue, into
// the other C tile, so the tile unit computes while the vector units scale.
#include <cstddef>
#include <cstdint>
#include <utility>

#include "base/aligned_buffer.h"
#include "kernels/amx/amx_kernels.h"
#include "kernels/amx/lanes.h"
#include "kernels/amx/tile.h"
#include "kernels/amx_emu/amx_support.h"

namespace xtile::XTILE_AMX_NS {

namespace {

constexpr int kTileRows = 16;       // rows of X per full A / C tile
constexpr int kBlock = 32;          // K per quant block = bytes per A-tile row
constexpr int kBTileBytes = 512;    // one block of one 16-row group: 8 rows × 64 bytes, int8
constexpr int kBRowBytes = 64;      // B-tile row: 4 K values × 16 columns
constexpr int kCTileBytes = 1024;   // 16 rows × 16 int32
constexpr int kMaxPanelGroups = 4;  // 64 weight rows: 4 output tiles share one pass over X
// Unpacked weight panel budget: half of a Sapphire Rapids core's 2 MiB L2, leaving the rest for
// the 16 activation rows being read (16 × K bytes) and the scales.
constexpr int64_t kPanelBudgetBytes = int64_t{1} << 20;

// Tile roles. Two C tiles so that block b+1 accumulates in one while block b is stored from the
// other; A and B alternate with C so that a load never waits on the TDP still reading the
// previous block's operands. tmm6 and tmm7 are free (docs/AMX.md: spare for deeper pipelining).
constexpr int kC0 = 0, kC1 = 1, kA0 = 2, kA1 = 3, kB0 = 4, kB1 = 5;

TileConfig make_config(int rows) {
  TileConfig cfg{};
  tile::set_shape(cfg, kC0, rows, 64);
  tile::set_shape(cfg, kC1, rows, 64);
  tile::set_shape(cfg, kA0, rows, kBlock);
  tile::set_shape(cfg, kA1, rows, kBlock);
  tile::set_shape(cfg, kB0, kBlock / 4, kBRowBytes);
  tile::set_shape(cfg, kB1, kBlock / 4, kBRowBytes);
  return cfg;
}

// Per-thread scratch (grows, never shrinks): the unpacked panel, transposed activation scales
// and the two stored C tiles. 64-byte aligned (AlignedBuffer): tile rows and zmm loads.
thread_local AlignedBuffer t_scratch;

uint8_t* scratch(size_t bytes) {
  if (t_scratch.size() < bytes) t_scratch = AlignedBuffer(bytes);
  return t_scratch.data();
}

// One output tile: rows × 16 columns over all K blocks.
struct TileJob {
  const int8_t* a;  // X row of the tile's first row, block 0 (A tiles: stride = k)
  int64_t k;
  int64_t nb;        // K blocks
  const int8_t* bq;  // unpacked group: nb B tiles of 512 bytes
  const float* bs;   // its fp32 scales: nb × 16
  const float* bm;   // its fp32 mins: nb × 16 (types with mins)
  const float* dxt;  // activation scales, nb × 16 (row i of the tile at [b * 16 + i])
  const float* sdt;  // activation s·d, the same shape (types with mins)
  float* y;          // y of (first row, first column)
  int64_t ldy;
  int n_valid;        // columns to write (16, or fewer at the end of the matrix)
  int32_t* cbuf;      // 2 × 1 KiB: stored C tiles
  const uint8_t* pf;  // packed bytes of a group of the next panel to prefetch, or null
  int64_t pf_block_bytes;
};

// The float accumulators must stay in registers across the whole K loop. GCC does that only if
// the array is indexed with constants (scalar replacement runs before loop unrolling) and every
// function touching it is inlined: the epilogue is called from 4 places, which is past GCC's
// inlining heuristics, and acc passed by reference to a non-inlined epilogue lives on the
// stack (a load and a store per row and block). Hence for_rows and always_inline on the helpers
// and their lambdas.
#define XTILE_AMX_INLINE __attribute__((always_inline)) inline
#define XTILE_AMX_LAMBDA_INLINE __attribute__((always_inline))

// Calls f(integral_constant<int, I>) for I = 0..kRows-1 as straight-line code.
template <typename F, int... I>
XTILE_AMX_INLINE void for_rows_impl(F& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int kRows, typename F>
XTILE_AMX_INLINE void for_rows(F&& f) {
  for_rows_impl(f, std::make_integer_sequence<int, kRows>{});
}

// The fields of a TileJob the K loop uses, copied into locals: a TileJob reached through a
// pointer would be reloaded from memory after every tile instruction ("memory" clobber).
struct KLoopState {
  const int8_t* a;
  int64_t k;
  const int8_t* bq;
  const float* bs;
  const float* bm;
  const float* dxt;
  const float* sdt;
};

// C = A_b · B_b: TILEZERO, then one TDPBSSD gives isum of every (row, column) of the tile for
// block b, exactly (int8 · int8 sums of 32 terms fit int32 with room to spare).
template <int kC, int kA, int kB>
XTILE_AMX_INLINE void issue_block(const KLoopState& s, int64_t b) {
  tile::zero<kC>();
  tile::load<kA>(s.a + b * kBlock, s.k);
  tile::load<kB>(s.bq + b * kBTileBytes, kBRowBytes);
  tile::dpbssd<kC, kA, kB>();
}

// Block b's epilogue from C tile kC: acc[i] = fma(float(isum[i]), dw * dx[i][b], acc[i]), then
// for types with mins acc[i] = fma(wm, sd[i][b], acc[i]), for the tile's rows, blocks in
// ascending order (the contract's fold).
template <int kC, int kRows, bool kMin>
XTILE_AMX_INLINE void retire_block(const KLoopState& s, int64_t b, int32_t* c,
                                   lanes::F32x16 (&acc)[kRows]) {
  tile::store<kC>(c, 64);
  const lanes::F32x16 dw = lanes::load(s.bs + b * kTileRows);
  const float* dx = s.dxt + b * kTileRows;
  for_rows<kRows>([&](auto i) XTILE_AMX_LAMBDA_INLINE {
    acc[i] = lanes::fma(lanes::load_i32_as_f32(c + i * 16), lanes::mul_bcast(dw, dx + i), acc[i]);
  });
  if constexpr (kMin) {
    const lanes::F32x16 wm = lanes::load(s.bm + b * kTileRows);
    const float* sd = s.sdt + b * kTileRows;
    for_rows<kRows>(
        [&](auto i) XTILE_AMX_LAMBDA_INLINE { acc[i] = lanes::fma_bcast(wm, sd + i, acc[i]); });
  }
}

// While the first row tile of a panel runs, pull the next panel's packed bytes for this group
// into L2, one block per K step: by the time that panel is unpacked they no longer come from
// DRAM.
XTILE_AMX_INLINE void prefetch_next(const uint8_t* pf, int64_t block_bytes, int64_t b) {
  if (!pf) return;
  const uint8_t* p = pf + b * block_bytes;
  for (int64_t off = 0; off < block_bytes; off += 64) lanes::prefetch_l2(p + off);
}

template <int kRows, bool kMin>
void tile_kloop(const TileJob& t) {
  const KLoopState s{t.a, t.k, t.bq, t.bs, t.bm, t.dxt, t.sdt};
  const int64_t nb = t.nb;
  const uint8_t* const pf = t.pf;
  const int64_t pf_bytes = t.pf_block_bytes;
  int32_t* const c0 = t.cbuf;
  int32_t* const c1 = t.cbuf + kCTileBytes / 4;
  lanes::F32x16 acc[kRows];
  for_rows<kRows>([&](auto i) XTILE_AMX_LAMBDA_INLINE { acc[i] = lanes::zero(); });

  issue_block<kC0, kA0, kB0>(s, 0);
  prefetch_next(pf, pf_bytes, 0);
  int64_t b = 1;
  // Steady state, two blocks per iteration so that tile numbers are constants: issue block b
  // into one C tile, then retire block b-1 from the other.
  for (; b + 1 < nb; b += 2) {
    issue_block<kC1, kA1, kB1>(s, b);
    prefetch_next(pf, pf_bytes, b);
    retire_block<kC0, kRows, kMin>(s, b - 1, c0, acc);
    issue_block<kC0, kA0, kB0>(s, b + 1);
    prefetch_next(pf, pf_bytes, b + 1);
    retire_block<kC1, kRows, kMin>(s, b, c1, acc);
  }
  if (b < nb) {  // one block left (nb even): issue it, then retire the last two
    issue_block<kC1, kA1, kB1>(s, b);
    prefetch_next(pf, pf_bytes, b);
    retire_block<kC0, kRows, kMin>(s, b - 1, c0, acc);
    retire_block<kC1, kRows, kMin>(s, b, c1, acc);
  } else {
    retire_block<kC0, kRows, kMin>(s, b - 1, c0, acc);
  }

  float* const y = t.y;
  const int64_t ldy = t.ldy;
  const int n_valid = t.n_valid;
  for_rows<kRows>([&](auto i) XTILE_AMX_LAMBDA_INLINE {
    if (n_valid == 16)
      lanes::store(y + i * ldy, acc[i]);
    else
      lanes::store_first(y + i * ldy, acc[i], n_valid);
  });
}

using TileKLoop = void (*)(const TileJob&);

// The K loop for a tile of `rows` rows (1..16): the row count is a template argument so that
// the accumulators are a fixed set of registers.
template <bool kMin, int... R>
TileKLoop kloop_for(int rows, std::integer_sequence<int, R...>) {
  TileKLoop fn = nullptr;
  ((rows == R + 1 ? (fn = &tile_kloop<R + 1, kMin>, 0) : 0), ...);
  return fn;
}

// Unpacks groups [g0, g1) of the packed matrix into the panel: B tiles of the signed int8
// values q (lanes::unpack_block), fp32 scales and mins, group-major then block, so one output
// tile's K loop reads all three sequentially.
void unpack_panel(const PackedMatrix& w, int64_t nb, int64_t g0, int64_t g1, int8_t* pq, float* ps,
                  float* pm) {
  for (int64_t g = g0; g < g1; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t slot = (g - g0) * nb + b;
      lanes::unpack_block(w, g, b, pq + slot * kBTileBytes, ps + slot * kTileRows,
                          pm + slot * kTileRows);
    }
}

template <bool kMin>
void gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
          int64_t m1, int64_t n0, int64_t n1, Layout layout, std::string_view name) {
  amx_support::check_call(w, layout, x, m0, m1, n0, n1, name);  // also: w.type is the layout's
  const x16::Geometry* geo = x16::geometry(w.type);
  if (m0 >= m1 || n0 >= n1) return;
  const int64_t k = w.k;
  const int64_t nb = k / kBlock;
  // Each group's packed bytes are one stream of nsb superblocks; per block, on average:
  const int64_t group_bytes = k / geo->elems * geo->bytes;
  const int64_t block_span = geo->bytes / (geo->elems / kBlock);
  const int64_t rows = m1 - m0;
  const int64_t full_tiles = rows / kTileRows;
  const int tail_rows = static_cast<int>(rows % kTileRows);
  const int64_t row_tiles = full_tiles + (tail_rows ? 1 : 0);
  const int64_t g_begin = n0 / kInterleave;
  const int64_t g_end = (n1 + kInterleave - 1) / kInterleave;

  int64_t panel_groups = kPanelBudgetBytes / (int64_t{kInterleave} * k);
  if (panel_groups > kMaxPanelGroups) panel_groups = kMaxPanelGroups;
  if (panel_groups < 1) panel_groups = 1;
  if (panel_groups > g_end - g_begin) panel_groups = g_end - g_begin;

  // Scratch: panel quants | scales | mins | transposed dx | transposed s·d | 2 stored C tiles
  // (all 64-aligned).
  const size_t pq_bytes = static_cast<size_t>(panel_groups * nb) * kBTileBytes;
  const size_t ps_bytes = static_cast<size_t>(panel_groups * nb) * kTileRows * sizeof(float);
  const size_t dxt_bytes = static_cast<size_t>(row_tiles * nb) * kTileRows * sizeof(float);
  uint8_t* base = scratch(pq_bytes + 2 * ps_bytes + 2 * dxt_bytes + 2 * kCTileBytes);
  auto* pq = reinterpret_cast<int8_t*>(base);
  auto* ps = reinterpret_cast<float*>(base + pq_bytes);
  auto* pm = reinterpret_cast<float*>(base + pq_bytes + ps_bytes);
  auto* dxt = reinterpret_cast<float*>(base + pq_bytes + 2 * ps_bytes);
  auto* sdt = reinterpret_cast<float*>(base + pq_bytes + 2 * ps_bytes + dxt_bytes);
  auto* cbuf = reinterpret_cast<int32_t*>(base + pq_bytes + 2 * ps_bytes + 2 * dxt_bytes);

  // Activation scales (and s·d) transposed once per call to [row tile][block][16 rows]: the
  // epilogue's 16 broadcasts per block then come from one cache line at constant offsets. Rows
  // past m1 get 0 and are never stored.
  for (int64_t rt = 0; rt < row_tiles; ++rt)
    for (int64_t b = 0; b < nb; ++b)
      for (int i = 0; i < kTileRows; ++i) {
        const int64_t m = m0 + rt * kTileRows + i;
        const int64_t at = (rt * nb + b) * kTileRows + i;
        dxt[at] = m < m1 ? x.d[m * nb + b] : 0.0f;
        if (kMin) sdt[at] = m < m1 ? x.sd[m * nb + b] : 0.0f;
      }

  // At most two tile configurations: full 16-row tiles and the tail's shorter A and C tiles
  // (never reading past row m1 - 1). LDTILECFG happens at most twice per panel.
  const TileConfig full_cfg = make_config(kTileRows);
  const TileConfig tail_cfg = make_config(tail_rows == 0 ? kTileRows : tail_rows);
  const TileKLoop full_loop = &tile_kloop<kTileRows, kMin>;
  const TileKLoop tail_loop =
      tail_rows ? kloop_for<kMin>(tail_rows, std::make_integer_sequence<int, kTileRows>{}) : nullptr;
  int loaded_rows = 0;

  for (int64_t g = g_begin; g < g_end; g += panel_groups) {
    const int64_t gp_end = g + panel_groups < g_end ? g + panel_groups : g_end;
    unpack_panel(w, nb, g, gp_end, pq, ps, pm);
    const int64_t next_groups = (g_end - gp_end) < panel_groups ? g_end - gp_end : panel_groups;
    for (int64_t rt = 0; rt < row_tiles; ++rt) {
      const int tile_rows = rt < full_tiles ? kTileRows : tail_rows;
      if (tile_rows != loaded_rows) {
        tile::configure(tile_rows == kTileRows ? full_cfg : tail_cfg);
        loaded_rows = tile_rows;
      }
      const TileKLoop loop = tile_rows == kTileRows ? full_loop : tail_loop;
      for (int64_t j = 0; j < gp_end - g; ++j) {
        const int64_t n = (g + j) * kInterleave;
        TileJob t;
        t.a = x.q + (m0 + rt * kTileRows) * k;
        t.k = k;
        t.nb = nb;
        t.bq = pq + j * nb * kBTileBytes;
        t.bs = ps + j * nb * kTileRows;
        t.bm = pm + j * nb * kTileRows;
        t.dxt = dxt + rt * nb * kTileRows;
        t.sdt = sdt + rt * nb * kTileRows;
        t.y = y + (m0 + rt * kTileRows) * ldy + n;
        t.ldy = ldy;
        t.n_valid = static_cast<int>(n1 - n < kInterleave ? n1 - n : kInterleave);
        t.cbuf = cbuf;
        t.pf = rt == 0 && j < next_groups ? w.data + (gp_end + j) * group_bytes : nullptr;
        t.pf_block_bytes = block_span;
        loop(t);
      }
    }
  }
  tile::release();
}

}  // namespace

#if XTILE_AMX_HW
#define XTILE_AMX_NAME(type) type "_gemm_16x16__amx"
#else
#define XTILE_AMX_NAME(type) type "_gemm_16x16__amx_emu"
#endif

#define XTILE_AMX_TYPE(fn, name, layout, min)                                                  \
  void fn##_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                 int64_t m1, int64_t n0, int64_t n1) {                                             \
    gemm<min>(w, x, y, ldy, m0, m1, n0, n1, Layout::layout, XTILE_AMX_NAME(name));                 \
  }
XTILE_AMX_TYPE(q8_0, "q8_0", q8_0_x16, false)
XTILE_AMX_TYPE(q4_0, "q4_0", q4_0_x16, false)
XTILE_AMX_TYPE(q4_1, "q4_1", q4_1_x16, true)
XTILE_AMX_TYPE(q5_0, "q5_0", q5_0_x16, false)
XTILE_AMX_TYPE(q5_1, "q5_1", q5_1_x16, true)
XTILE_AMX_TYPE(iq4_nl, "iq4_nl", iq4_nl_x16, false)
XTILE_AMX_TYPE(q4_k, "q4_K", q4_k_x16, true)
XTILE_AMX_TYPE(q5_k, "q5_K", q5_k_x16, true)
XTILE_AMX_TYPE(iq4_xs, "iq4_xs", iq4_xs_x16, false)
#undef XTILE_AMX_TYPE

#undef XTILE_AMX_NAME
#undef XTILE_AMX_INLINE
#undef XTILE_AMX_LAMBDA_INLINE

}  // namespace xtile::XTILE_AMX_NS
