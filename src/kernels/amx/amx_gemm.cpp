// GEMM of every x16 weight type on AMX tiles (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K, Q5_K,
// Q6_K, IQ4_XS), bit-exact with the ref tier (quant/weight_terms.h). Written once against tile.h
// and lanes.h and compiled twice (see amx_kernels.h). docs/AMX.md has the blocking, the
// per-step cycle budget and what the emulator executes. Q6_K, whose 16-element halves carry
// their own int8 sub-scales, runs as two byte planes of q · sub (lanes::unpack_q6k_planes): two
// TDPBSSD per block into two C tiles, isum = 256 · C_hi + C_lo ("planes" below).
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
// With one row tile of 9..16 rows there is no panel: each group's K loop unpacks its blocks a few
// steps ahead of their TDPBSSD into an 8-slot ring in L1 (StreamSource), so the weights are read
// once, in order, and never written back out (docs/AMX.md, "Small M").
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
// previous block's operands. With two planes (Q6_K) the lo plane's C tiles are tmm6 and tmm7,
// and tmm4 / tmm5 hold the hi and lo planes' B tiles of every block (no tile left to alternate
// them: the hi plane's load for block b+1 waits only for block b's first TDPBSSD).
constexpr int kC0 = 0, kC1 = 1, kA0 = 2, kA1 = 3, kB0 = 4, kB1 = 5, kCLo0 = 6, kCLo1 = 7;

TileConfig make_config(int rows, int planes) {
  TileConfig cfg{};
  tile::set_shape(cfg, kC0, rows, 64);
  tile::set_shape(cfg, kC1, rows, 64);
  tile::set_shape(cfg, kA0, rows, kBlock);
  tile::set_shape(cfg, kA1, rows, kBlock);
  tile::set_shape(cfg, kB0, kBlock / 4, kBRowBytes);
  tile::set_shape(cfg, kB1, kBlock / 4, kBRowBytes);
  if (planes == 2) {
    tile::set_shape(cfg, kCLo0, rows, 64);
    tile::set_shape(cfg, kCLo1, rows, 64);
  }
  return cfg;
}

// B tiles per block: 2 for Q6_K's byte planes (hi, then lo: 1024 bytes), 1 for every other type.
template <GgmlType kType>
inline constexpr int kPlanesOf = kType == GgmlType::Q6_K ? 2 : 1;

// Per-thread scratch (grows, never shrinks): the unpacked panel, transposed activation scales
// and the stored C tiles (two, four with planes). 64-byte aligned (AlignedBuffer): tile rows and
// zmm loads.
thread_local AlignedBuffer t_scratch;

uint8_t* scratch(size_t bytes) {
  if (t_scratch.size() < bytes) t_scratch = AlignedBuffer(bytes);
  return t_scratch.data();
}

// One output tile: rows × 16 columns over all K blocks. Its B tiles, weight scales and mins come
// from one of two sources: a panel unpacked before the K loop (bq/bs/bm; many row tiles share
// it), or, with `w` set, the packed matrix itself, each block unpacked inside the K loop a few
// blocks ahead of its TDPBSSD into a small ring (one row tile: nothing to share).
struct TileJob {
  const int8_t* a;  // X row of the tile's first row, block 0 (A tiles: stride = k)
  int64_t k;
  int64_t nb;        // K blocks
  const int8_t* bq;  // unpacked group: nb × planes B tiles of 512 bytes
  const float* bs;   // its fp32 scales: nb × 16
  const float* bm;   // its fp32 mins: nb × 16 (types with mins)
  const float* dxt;  // activation scales, nb × 16 (row i of the tile at [b * 16 + i])
  const float* sdt;  // activation s·d, the same shape (types with mins)
  float* y;          // y of (first row, first column)
  int64_t ldy;
  int n_valid;        // columns to write (16, or fewer at the end of the matrix)
  int32_t* cbuf;      // 4 × 1 KiB: stored C tiles (C0, C1, then the lo plane's two)
  const uint8_t* pf;  // panel: the packed bytes of a group of the next panel to prefetch, or
                      // null; streaming: this tile's group's packed bytes
  int64_t pf_block_bytes;  // packed bytes per block (on average: K-quants pack 8 per superblock)
  const PackedMatrix* w;   // streaming: the packed matrix and the tile's group
  int64_t g;
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

// C = A_b · B_b: TILEZERO, then one TDPBSSD gives isum of every (row, column) of the tile for
// block b, exactly (int8 · int8 sums of 32 terms fit int32 with room to spare). a: the block's
// activations (stride k), bq: its unpacked B tile.
// Two planes: the same A tile times the hi plane's B (tmm4) into kC and the lo plane's (tmm5)
// into kC's lo partner.
template <int kC, int kA, int kB, int kPlanes>
XTILE_AMX_INLINE void issue_block(const int8_t* a, int64_t k, const int8_t* bq) {
  if constexpr (kPlanes == 1) {
    tile::zero<kC>();
    tile::load<kA>(a, k);
    tile::load<kB>(bq, kBRowBytes);
    tile::dpbssd<kC, kA, kB>();
  } else {
    constexpr int kCLo = kC == kC0 ? kCLo0 : kCLo1;
    tile::zero<kC>();
    tile::zero<kCLo>();
    tile::load<kA>(a, k);
    tile::load<kB0>(bq, kBRowBytes);
    tile::dpbssd<kC, kA, kB0>();
    tile::load<kB1>(bq + kBTileBytes, kBRowBytes);
    tile::dpbssd<kCLo, kA, kB1>();
  }
}

// A block's epilogue from C tile kC: acc[i] = fma(float(isum[i]), dw * dx[i], acc[i]), then for
// types with mins acc[i] = fma(wm, sd[i], acc[i]), for the tile's rows, blocks in ascending order
// (the contract's fold). bs, bm: the block's 16 weight scales and mins; dx, sd: its activation
// scales and s·d, one per row.
// Two planes: isum = 256 · C_hi + C_lo per element, the lo plane's tile stored 2 KiB after c.
template <int kC, int kRows, bool kMin, int kPlanes>
XTILE_AMX_INLINE void retire_block(int32_t* c, const float* bs, const float* bm, const float* dx,
                                   const float* sd, lanes::F32x16 (&acc)[kRows]) {
  int32_t* const c_lo = c + 2 * kCTileBytes / 4;
  tile::store<kC>(c, 64);
  if constexpr (kPlanes == 2) tile::store<kC == kC0 ? kCLo0 : kCLo1>(c_lo, 64);
  const lanes::F32x16 dw = lanes::load(bs);
  for_rows<kRows>([&](auto i) XTILE_AMX_LAMBDA_INLINE {
    const lanes::F32x16 isum = kPlanes == 1 ? lanes::load_i32_as_f32(c + i * 16)
                                            : lanes::load_planes_as_f32(c + i * 16, c_lo + i * 16);
    acc[i] = lanes::fma(isum, lanes::mul_bcast(dw, dx + i), acc[i]);
  });
  if constexpr (kMin) {
    const lanes::F32x16 wm = lanes::load(bm);
    for_rows<kRows>(
        [&](auto i) XTILE_AMX_LAMBDA_INLINE { acc[i] = lanes::fma_bcast(wm, sd + i, acc[i]); });
  }
}

// The panel source: block b's B tile, scales and mins at b's place in the unpacked group. While
// the first row tile of a panel runs, it pulls the next panel's packed bytes for this group into
// L2, one block per K step: by the time that panel is unpacked they no longer come from DRAM.
// Its fields are copies of the TileJob's: a TileJob reached through a pointer would be reloaded
// from memory after every tile instruction ("memory" clobber).
template <int kPlanes>
struct PanelSource {
  const int8_t* bq;
  const float* bs;
  const float* bm;
  const uint8_t* pf;
  int64_t pf_block_bytes;

  explicit PanelSource(const TileJob& t)
      : bq(t.bq), bs(t.bs), bm(t.bm), pf(t.pf), pf_block_bytes(t.pf_block_bytes) {}
  XTILE_AMX_INLINE void start() const {}
  XTILE_AMX_INLINE void before_issue(int64_t b) const {
    if (!pf) return;
    const uint8_t* p = pf + b * pf_block_bytes;
    for (int64_t off = 0; off < pf_block_bytes; off += 64) lanes::prefetch_l2(p + off);
  }
  XTILE_AMX_INLINE const int8_t* q(int64_t b) const { return bq + b * kPlanes * kBTileBytes; }
  XTILE_AMX_INLINE const float* scales(int64_t b) const { return bs + b * kTileRows; }
  XTILE_AMX_INLINE const float* mins(int64_t b) const { return bm + b * kTileRows; }
};

// The streaming source (one row tile of 9..16 rows: a server's decode step): block j of the group
// is unpacked into ring slot j mod kRing when block j − kAhead + 1 is issued, so that the vector
// stores of a slot have left the store buffer when its TILELOADD runs (a tile load waits for
// them: no store forwarding into tiles), and the packed bytes are read once, in order.
// Streaming starts at 9 rows: below, the amx tier runs the avx512 GEMV (registry.cpp), and each
// streamed row count is one K loop per type to compile (9 types; the sanitizer build's time).
constexpr int kStreamMinRows = 9;
constexpr int kRing = 8;   // slots: the block being retired, the one issued, kAhead - 1 ahead
constexpr int kAhead = 4;  // blocks unpacked ahead of their TDPBSSD
static_assert(kAhead + 1 <= kRing && (kRing & (kRing - 1)) == 0);
struct alignas(64) Ring {
  int8_t q[kRing][kBTileBytes];
  float s[kRing][kTileRows];
  float m[kRing][kTileRows];
};
thread_local Ring t_ring;

// How far ahead of the block being unpacked the packed stream is prefetched (into L2), as the
// avx512 GEMV does: the hardware prefetchers alone leave the K loop waiting on DRAM.
constexpr int64_t kStreamPrefetchBytes = 8192;

template <GgmlType kType>
struct StreamSource {
  const PackedMatrix& w;
  int64_t g, nb;
  Ring& ring;
  const uint8_t* stream;  // the group's packed bytes
  int64_t span;           // packed bytes per block, on average

  XTILE_AMX_INLINE static int slot(int64_t b) { return static_cast<int>(b & (kRing - 1)); }
  XTILE_AMX_INLINE void unpack(int64_t b) const {
    if (b < nb)
      lanes::unpack_block_of<kType>(w, g, b, ring.q[slot(b)], ring.s[slot(b)], ring.m[slot(b)]);
  }
  XTILE_AMX_INLINE void start() const {
    for (int64_t b = 0; b < kAhead; ++b) unpack(b);
  }
  // Block 0's slots were filled by start(); block b ≥ 1's issue brings in block b + kAhead − 1.
  XTILE_AMX_INLINE void before_issue(int64_t b) const {
    const uint8_t* p = stream + b * span + kStreamPrefetchBytes;
    for (int64_t off = 0; off < span; off += 64) lanes::prefetch_l2(p + off);
    if (b > 0) unpack(b + kAhead - 1);
  }
  XTILE_AMX_INLINE const int8_t* q(int64_t b) const { return ring.q[slot(b)]; }
  XTILE_AMX_INLINE const float* scales(int64_t b) const { return ring.s[slot(b)]; }
  XTILE_AMX_INLINE const float* mins(int64_t b) const { return ring.m[slot(b)]; }
};

// The K loop of one output tile, from either source. Steady state, two blocks per iteration so
// that tile numbers are constants: issue block b into one C tile, then retire block b-1 from the
// other.
template <int kRows, bool kMin, int kPlanes, typename Source>
XTILE_AMX_INLINE void run_kloop(const TileJob& t, const Source& src) {
  const int8_t* const a = t.a;
  const int64_t k = t.k;
  const int64_t nb = t.nb;
  const float* const dxt = t.dxt;
  const float* const sdt = t.sdt;
  int32_t* const c0 = t.cbuf;
  int32_t* const c1 = t.cbuf + kCTileBytes / 4;
  lanes::F32x16 acc[kRows];
  for_rows<kRows>([&](auto i) XTILE_AMX_LAMBDA_INLINE { acc[i] = lanes::zero(); });

  auto issue = [&](auto cc, auto ac, auto bc, int64_t b) XTILE_AMX_LAMBDA_INLINE {
    src.before_issue(b);
    issue_block<decltype(cc)::value, decltype(ac)::value, decltype(bc)::value, kPlanes>(
        a + b * kBlock, k, src.q(b));
  };
  auto retire = [&](auto cc, int32_t* c, int64_t b) XTILE_AMX_LAMBDA_INLINE {
    retire_block<decltype(cc)::value, kRows, kMin, kPlanes>(
        c, src.scales(b), src.mins(b), dxt + b * kTileRows, sdt + b * kTileRows, acc);
  };
  using C0 = std::integral_constant<int, kC0>;
  using C1 = std::integral_constant<int, kC1>;
  using A0 = std::integral_constant<int, kA0>;
  using A1 = std::integral_constant<int, kA1>;
  using B0 = std::integral_constant<int, kB0>;
  using B1 = std::integral_constant<int, kB1>;

  src.start();
  issue(C0{}, A0{}, B0{}, 0);
  int64_t b = 1;
  for (; b + 1 < nb; b += 2) {
    issue(C1{}, A1{}, B1{}, b);
    retire(C0{}, c0, b - 1);
    issue(C0{}, A0{}, B0{}, b + 1);
    retire(C1{}, c1, b);
  }
  if (b < nb) {  // one block left (nb even): issue it, then retire the last two
    issue(C1{}, A1{}, B1{}, b);
    retire(C0{}, c0, b - 1);
    retire(C1{}, c1, b);
  } else {
    retire(C0{}, c0, b - 1);
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

template <int kRows, bool kMin, int kPlanes>
void tile_kloop(const TileJob& t) {
  run_kloop<kRows, kMin, kPlanes>(t, PanelSource<kPlanes>(t));
}

template <GgmlType kType, int kRows, bool kMin>
void stream_kloop(const TileJob& t) {
  run_kloop<kRows, kMin, 1>(t,
                            StreamSource<kType>{*t.w, t.g, t.nb, t_ring, t.pf, t.pf_block_bytes});
}

using TileKLoop = void (*)(const TileJob&);

// The K loop for a tile of `rows` rows (1..16): the row count is a template argument so that
// the accumulators are a fixed set of registers.
template <bool kMin, int kPlanes, int... R>
TileKLoop kloop_for(int rows, std::integer_sequence<int, R...>) {
  TileKLoop fn = nullptr;
  ((rows == R + 1 ? (fn = &tile_kloop<R + 1, kMin, kPlanes>, 0) : 0), ...);
  return fn;
}
// The streaming K loop for 9..16 rows (kStreamMinRows.. kTileRows).
template <GgmlType kType, bool kMin, int... R>
TileKLoop stream_kloop_for(int rows, std::integer_sequence<int, R...>) {
  TileKLoop fn = nullptr;
  ((rows == R + kStreamMinRows ? (fn = &stream_kloop<kType, R + kStreamMinRows, kMin>, 0) : 0),
   ...);
  return fn;
}

// Unpacks groups [g0, g1) of the packed matrix into the panel: B tiles of the signed int8
// values q (Q6_K: its two planes; lanes::unpack_block), fp32 scales and mins, group-major then
// block, so one output tile's K loop reads all three sequentially.
void unpack_panel(const PackedMatrix& w, int64_t nb, int64_t g0, int64_t g1, int planes, int8_t* pq,
                  float* ps, float* pm) {
  for (int64_t g = g0; g < g1; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t slot = (g - g0) * nb + b;
      lanes::unpack_block(w, g, b, pq + slot * planes * kBTileBytes, ps + slot * kTileRows,
                          pm + slot * kTileRows);
    }
}

template <GgmlType kType, bool kMin>
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

  // One row tile of 9..16 rows (a server's decode step, a short prompt) has no panel to share:
  // its K loops stream the packed groups (StreamSource), without a panel. Not Q6_K: its planes
  // cost more to unpack than VNNI spends on the whole block at that height (docs/AMX.md), so the
  // amx tier gives it the tiles only from the switch point on, and any height here uses panels.
  constexpr int planes = kPlanesOf<kType>;
  const bool streaming = planes == 1 && row_tiles == 1 && rows >= kStreamMinRows;
  int64_t panel_groups = kPanelBudgetBytes / (int64_t{kInterleave} * k * planes);
  if (panel_groups > kMaxPanelGroups) panel_groups = kMaxPanelGroups;
  if (panel_groups < 1) panel_groups = 1;
  if (panel_groups > g_end - g_begin) panel_groups = g_end - g_begin;
  if (streaming) panel_groups = 0;

  // Scratch: panel quants | scales | mins | transposed dx | transposed s·d | 4 stored C tiles
  // (all 64-aligned).
  const size_t pq_bytes = static_cast<size_t>(panel_groups * nb * planes) * kBTileBytes;
  const size_t ps_bytes = static_cast<size_t>(panel_groups * nb) * kTileRows * sizeof(float);
  const size_t dxt_bytes = static_cast<size_t>(row_tiles * nb) * kTileRows * sizeof(float);
  uint8_t* base = scratch(pq_bytes + 2 * ps_bytes + 2 * dxt_bytes + 4 * kCTileBytes);
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
  const TileConfig full_cfg = make_config(kTileRows, planes);
  const TileConfig tail_cfg = make_config(tail_rows == 0 ? kTileRows : tail_rows, planes);

  // What every tile job of row tile rt and output columns [n, n + 16) has, whichever its source
  // (set by the caller: the panel's bq/bs/bm, or the packed matrix and group to stream).
  auto tile_job = [&](int64_t rt, int64_t n) {
    TileJob t{};
    t.a = x.q + (m0 + rt * kTileRows) * k;
    t.k = k;
    t.nb = nb;
    t.dxt = dxt + rt * nb * kTileRows;
    t.sdt = sdt + rt * nb * kTileRows;
    t.y = y + (m0 + rt * kTileRows) * ldy + n;
    t.ldy = ldy;
    t.n_valid = static_cast<int>(n1 - n < kInterleave ? n1 - n : kInterleave);
    t.cbuf = cbuf;
    t.pf_block_bytes = block_span;
    return t;
  };

  if constexpr (planes == 1) {
    if (streaming) {
      const TileKLoop loop = stream_kloop_for<lanes::kUnpackAs<kType>, kMin>(
          static_cast<int>(rows),
          std::make_integer_sequence<int, kTileRows - kStreamMinRows + 1>{});
      tile::configure(tail_rows ? tail_cfg : full_cfg);
      for (int64_t g = g_begin; g < g_end; ++g) {
        TileJob t = tile_job(0, g * kInterleave);
        t.pf = w.data + g * group_bytes;
        t.w = &w;
        t.g = g;
        loop(t);
      }
      tile::release();
      return;
    }
  }

  const TileKLoop full_loop = &tile_kloop<kTileRows, kMin, planes>;
  const TileKLoop tail_loop =
      tail_rows ? kloop_for<kMin, planes>(tail_rows, std::make_integer_sequence<int, kTileRows>{})
                : nullptr;
  int loaded_rows = 0;
  for (int64_t g = g_begin; g < g_end; g += panel_groups) {
    const int64_t gp_end = g + panel_groups < g_end ? g + panel_groups : g_end;
    unpack_panel(w, nb, g, gp_end, planes, pq, ps, pm);
    const int64_t next_groups = (g_end - gp_end) < panel_groups ? g_end - gp_end : panel_groups;
    for (int64_t rt = 0; rt < row_tiles; ++rt) {
      const int tile_rows = rt < full_tiles ? kTileRows : tail_rows;
      if (tile_rows != loaded_rows) {
        tile::configure(tile_rows == kTileRows ? full_cfg : tail_cfg);
        loaded_rows = tile_rows;
      }
      const TileKLoop loop = tile_rows == kTileRows ? full_loop : tail_loop;
      for (int64_t j = 0; j < gp_end - g; ++j) {
        TileJob t = tile_job(rt, (g + j) * kInterleave);
        t.bq = pq + j * nb * planes * kBTileBytes;
        t.bs = ps + j * nb * kTileRows;
        t.bm = pm + j * nb * kTileRows;
        t.pf = rt == 0 && j < next_groups ? w.data + (gp_end + j) * group_bytes : nullptr;
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

#define XTILE_AMX_TYPE(fn, name, layout, type, min)                                                \
  void fn##_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                 int64_t m1, int64_t n0, int64_t n1) {                                             \
    gemm<GgmlType::type, min>(w, x, y, ldy, m0, m1, n0, n1, Layout::layout, XTILE_AMX_NAME(name)); \
  }
XTILE_AMX_TYPE(q8_0, "q8_0", q8_0_x16, Q8_0, false)
XTILE_AMX_TYPE(q4_0, "q4_0", q4_0_x16, Q4_0, false)
XTILE_AMX_TYPE(q4_1, "q4_1", q4_1_x16, Q4_1, true)
XTILE_AMX_TYPE(q5_0, "q5_0", q5_0_x16, Q5_0, false)
XTILE_AMX_TYPE(q5_1, "q5_1", q5_1_x16, Q5_1, true)
XTILE_AMX_TYPE(iq4_nl, "iq4_nl", iq4_nl_x16, IQ4_NL, false)
XTILE_AMX_TYPE(q4_k, "q4_K", q4_k_x16, Q4_K, true)
XTILE_AMX_TYPE(q5_k, "q5_K", q5_k_x16, Q5_K, true)
XTILE_AMX_TYPE(q6_k, "q6_K", q6_k_x16, Q6_K, false)
XTILE_AMX_TYPE(iq4_xs, "iq4_xs", iq4_xs_x16, IQ4_XS, false)
#undef XTILE_AMX_TYPE

#undef XTILE_AMX_NAME
#undef XTILE_AMX_INLINE
#undef XTILE_AMX_LAMBDA_INLINE

}  // namespace xtile::XTILE_AMX_NS
