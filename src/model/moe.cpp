#include "model/moe.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "base/error.h"
#include "kernels/pack/pack.h"
#include "model/embedding.h"
#include "ops/matmul.h"
#include "ops/matmul_float.h"
#include "ops/ops.h"
#include "quant/weight_terms.h"

namespace xtile {

namespace {

bool is_quantized(GgmlType t) {
  return is_quantized_weight(t);
}
bool is_float(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

size_t align64(size_t n) {
  return (n + 63) / 64 * 64;
}

size_t sz(int64_t n) {
  return static_cast<size_t>(n);
}

// Weight rows per float-path tile: 16 rows stay in cache while the expert's rows pass over them.
constexpr int64_t kFloatRowTile = 16;

// Rows per task of the fused path: a chunk's gate|up output (128 × 2 n_ff floats, 768 KB for
// 30B-A3B) stays in the core's caches from the kernel that writes it to the SwiGLU that reads it,
// where the phase-by-phase path writes gate|up, SwiGLU and the gathered activations for all
// rows·k pairs (25 + 12.5 + 8 MB at 512 rows) and reads them back from memory. An expert with
// more rows is cut into even chunks: its weights (2.6 MB in Q4_0) come from L3 for the later
// ones. 128 rows are also the GEMM's M chunk at K = 2048 (kernels' kActChunkBytes).
constexpr int64_t kChunkRows = 128;

// Row i of dst = row r of src (the int8 codes and the per-block terms).
void copy_act_row(const QuantizedActs& src, int64_t r, QuantizedActs& dst, int64_t i) {
  const int64_t k = src.k, nb = src.blocks();
  std::memcpy(dst.q + i * k, src.q + r * k, sz(k));
  std::memcpy(dst.d + i * nb, src.d + r * nb, sz(nb) * sizeof(float));
  std::memcpy(dst.s + i * nb, src.s + r * nb, sz(nb) * sizeof(int32_t));
  std::memcpy(dst.sd + i * nb, src.sd + r * nb, sz(nb) * sizeof(float));
  std::memcpy(dst.sl + i * nb, src.sl + r * nb, sz(nb) * sizeof(int32_t));
}

// y[m, n) = w · x for every row m of x, all of w's columns: the GEMV or GEMM by x's row count.
void expert_matmul(const KernelSet& kernels, const PackedMatrix& w, const QuantizedActs& x,
                   float* y, int64_t ldy) {
  const MatmulKernel* kernel = x.m >= kernels.gemm_min_m ? kernels.gemm : kernels.gemv;
  kernel->fn(w, x, y, ldy, 0, x.m, 0, w.n);
}

}  // namespace

// ---- Routing ----

void moe_route_logits(float* logits, int64_t n_expert, int64_t n_used, int32_t* experts,
                      float* weights) {
  ops::softmax_row(logits, n_expert);
  // Top-k by selection: k passes, each taking the largest probability not yet chosen; the
  // strict comparison keeps the lower index on ties.
  for (int64_t j = 0; j < n_used; ++j) {
    int64_t best = -1;
    for (int64_t e = 0; e < n_expert; ++e) {
      bool taken = false;
      for (int64_t i = 0; i < j; ++i) taken = taken || experts[i] == e;
      if (!taken && (best < 0 || logits[e] > logits[best])) best = e;
    }
    experts[j] = static_cast<int32_t>(best);
  }
  // From here on every path uses expert-index order: the sum below, the weighted sum of the
  // experts' outputs.
  std::sort(experts, experts + n_used);
  float sum = 0.0f;
  for (int64_t j = 0; j < n_used; ++j) sum += logits[experts[j]];
  for (int64_t j = 0; j < n_used; ++j) weights[j] = logits[experts[j]] / sum;
}

void moe_route_row(const float* router, const float* h, const MoeShape& shape, float* scratch,
                   int32_t* experts, float* weights) {
  ops::dots(router, shape.n_embd, shape.n_expert, h, shape.n_embd, scratch);
  moe_route_logits(scratch, shape.n_expert, shape.n_used, experts, weights);
}

// ---- Weights ----

MoeWeights::MoeWeights(gguf::File& file, const MoeShape& shape, int64_t n_layer,
                       const std::function<KernelSet(GgmlType)>& kernels, bool dequantize)
    : file_(file), shape_(shape), dequantize_(dequantize) {
  const int64_t e = shape.n_embd, ff = shape.n_ff, ne = shape.n_expert;
  if (ne < 1 || shape.n_used < 1 || shape.n_used > ne)
    fail(file.path(), ": expert_used_count ", shape.n_used, " must be in 1..expert_count (", ne,
         ")");
  auto tensor = [&](const std::string& name, std::initializer_list<int64_t> ne_expected) {
    const gguf::TensorInfo* t = file.find_tensor(name);
    if (!t) fail(file.path(), ": missing tensor '", name, "'");
    bool ok = t->n_dims == ne_expected.size();
    size_t d = 0;
    std::string want = "[";
    for (int64_t v : ne_expected) {
      ok = ok && static_cast<int64_t>(t->ne[d]) == v;
      want += (d++ ? ", " : "") + std::to_string(v);
    }
    if (!ok)
      fail(file.path(), ": tensor '", name, "' has shape ", t->shape_string(), ", expected ", want,
           "]");
    if (!is_quantized(t->type) && !is_float(t->type))
      fail(file.path(), ": tensor '", name, "' has type ", ggml_type_name(t->type),
           "; xtile runs f32, f16, bf16, ", quantized_weight_names(), " experts");
    return t;
  };
  layers_.resize(sz(n_layer));
  sources_.resize(sz(n_layer));
  for (int64_t l = 0; l < n_layer; ++l) {
    MoeLayer& layer = layers_[sz(l)];
    Source& src = sources_[sz(l)];
    const std::string b = "blk." + std::to_string(l) + ".";
    // The router is a float-path matmul (n_expert outputs): f32 in place, else converted once.
    const gguf::TensorInfo* router = tensor(b + "ffn_gate_inp.weight", {e, ne});
    if (router->type == GgmlType::F32) {
      layer.router = reinterpret_cast<const float*>(router->data);
    } else {
      std::vector<float>& r = converted_routers_.emplace_back(sz(e * ne));
      for (int64_t i = 0; i < ne; ++i)
        dequantize_gguf_row(router->type, router->data, e, i, r.data() + i * e);
      layer.router = r.data();
    }
    src.gate = tensor(b + "ffn_gate_exps.weight", {e, ff, ne});
    src.up = tensor(b + "ffn_up_exps.weight", {e, ff, ne});
    src.down = tensor(b + "ffn_down_exps.weight", {ff, e, ne});
    if (src.gate->type != src.up->type)
      fail(file.path(), ": '", src.gate->name, "' is ", ggml_type_name(src.gate->type), " but '",
           src.up->name, "' is ", ggml_type_name(src.up->type),
           "; gate and up are fused per expert and must have the same type");
    // Arena space per expert: packed bytes, or f32 rows for F16/BF16 (F32 stays in place).
    auto plan = [&](GgmlType type, int64_t n, int64_t k, KernelSet* ks, size_t* offset,
                    size_t* stride) {
      if (packs(type)) {
        *ks = kernels(type);
        *stride = align64(packed_bytes(ks->layout, n, k));
      } else if (type != GgmlType::F32) {
        *stride = align64(sz(n * k) * sizeof(float));
      }
      *offset = arena_bytes_;
      arena_bytes_ += *stride * sz(ne);
    };
    plan(src.gate->type, 2 * ff, e, &layer.gate_up_kernels, &src.gate_up_offset,
         &src.gate_up_stride);
    if (packs(src.gate->type) && ff % layout_row_step(layer.gate_up_kernels.layout) != 0)
      fail(file.path(), ": expert_feed_forward_length ", ff, " is not a multiple of ",
           layout_row_step(layer.gate_up_kernels.layout), ", which layout ",
           layout_name(layer.gate_up_kernels.layout), " needs to fuse gate|up per expert");
    plan(src.down->type, e, ff, &layer.down_kernels, &src.down_offset, &src.down_stride);
    source_bytes_ += src.gate->bytes + src.up->bytes + src.down->bytes;
  }
}

void MoeWeights::release(const gguf::TensorInfo& t) {
  if (MappedFile* m = file_.mapping()) m->release(file_.data_offset() + t.offset, t.bytes);
}

void MoeWeights::build(ThreadPool& pool, const MoeTensorDone& done) {
  arena_ = AlignedBuffer(arena_bytes_);
  for (size_t l = 0; l < layers_.size(); ++l) {
    build_gate_up(pool, l, done);
    build_down(pool, l, done);
  }
}

void MoeWeights::build_gate_up(ThreadPool& pool, size_t l, const MoeTensorDone& done) {
  const Source& src = sources_[l];
  MoeLayer& layer = layers_[l];
  const int64_t e = shape_.n_embd, ff = shape_.n_ff, ne = shape_.n_expert;
  const GgmlType type = src.gate->type;
  uint8_t* base = arena_.data() + src.gate_up_offset;
  layer.gate_up.resize(sz(ne));
  // Expert x's slice of a 3-D [e, ff, ne] tensor: ff GGUF rows starting at row x·ff.
  const size_t slice_bytes = ggml_row_bytes(type, sz(e)) * sz(ff);
  if (packs(type)) {
    const Layout layout = layer.gate_up_kernels.layout;
    // Gate rows first, then up rows: ff is a multiple of the layout's row step (checked), so
    // the up rows start on a group boundary, at the bytes of a whole ff-row matrix.
    const size_t part_bytes = packed_bytes(layout, ff, e);
    for (const gguf::TensorInfo* t : {src.gate, src.up}) {
      const size_t at = t == src.gate ? 0 : part_bytes;
      pool.parallel_for(0, ne, 1, [&](int64_t x0, int64_t x1, int) {
        for (int64_t x = x0; x < x1; ++x)
          pack_matrix(layout, t->data + sz(x) * slice_bytes, ff, e,
                      base + sz(x) * src.gate_up_stride + at);
      });
      release(*t);
      if (done) done({t, true, layout, false, part_bytes * sz(ne)});
    }
    for (int64_t x = 0; x < ne; ++x) {
      ExpertMatrix& m = layer.gate_up[sz(x)];
      m.n = 2 * ff;
      m.k = e;
      m.packed = true;
      m.pm = PackedMatrix{type,
                          layout,
                          2 * ff,
                          e,
                          base + sz(x) * src.gate_up_stride,
                          packed_bytes(layout, 2 * ff, e)};
    }
    return;
  }
  for (int64_t x = 0; x < ne; ++x) {
    ExpertMatrix& m = layer.gate_up[sz(x)];
    m.n = 2 * ff;
    m.k = e;
    m.part_rows = ff;
    if (type == GgmlType::F32) {
      m.f32[0] = reinterpret_cast<const float*>(src.gate->data) + x * ff * e;
      m.f32[1] = reinterpret_cast<const float*>(src.up->data) + x * ff * e;
    } else {
      float* dst = reinterpret_cast<float*>(base + sz(x) * src.gate_up_stride);
      m.f32[0] = dst;
      m.f32[1] = dst + ff * e;
    }
  }
  for (const gguf::TensorInfo* t : {src.gate, src.up}) {
    if (type != GgmlType::F32) {
      const int part = t == src.gate ? 0 : 1;
      pool.parallel_for(0, ne, 1, [&](int64_t x0, int64_t x1, int) {
        for (int64_t x = x0; x < x1; ++x) {
          float* dst = reinterpret_cast<float*>(base + sz(x) * src.gate_up_stride) + part * ff * e;
          for (int64_t r = 0; r < ff; ++r)
            dequantize_gguf_row(type, t->data, e, x * ff + r, dst + r * e);
        }
      });
      release(*t);
    }
    if (done)
      done({t, false, Layout::q8_0_rows, type != GgmlType::F32, sz(ff * e * ne) * sizeof(float)});
  }
}

void MoeWeights::build_down(ThreadPool& pool, size_t l, const MoeTensorDone& done) {
  const Source& src = sources_[l];
  MoeLayer& layer = layers_[l];
  const int64_t e = shape_.n_embd, ff = shape_.n_ff, ne = shape_.n_expert;
  const gguf::TensorInfo* t = src.down;
  const GgmlType type = t->type;
  uint8_t* base = arena_.data() + src.down_offset;
  layer.down.resize(sz(ne));
  const size_t slice_bytes = ggml_row_bytes(type, sz(ff)) * sz(e);
  const bool quantized = packs(type);
  const Layout layout = layer.down_kernels.layout;
  if (quantized || type != GgmlType::F32) {
    pool.parallel_for(0, ne, 1, [&](int64_t x0, int64_t x1, int) {
      for (int64_t x = x0; x < x1; ++x) {
        uint8_t* dst = base + sz(x) * src.down_stride;
        if (quantized) {
          pack_matrix(layout, t->data + sz(x) * slice_bytes, e, ff, dst);
        } else {
          for (int64_t r = 0; r < e; ++r)
            dequantize_gguf_row(type, t->data, ff, x * e + r,
                                reinterpret_cast<float*>(dst) + r * ff);
        }
      }
    });
    release(*t);
  }
  for (int64_t x = 0; x < ne; ++x) {
    ExpertMatrix& m = layer.down[sz(x)];
    m.n = e;
    m.k = ff;
    m.part_rows = e;
    uint8_t* dst = base + sz(x) * src.down_stride;
    if (quantized) {
      m.packed = true;
      m.pm = PackedMatrix{type, layout, e, ff, dst, packed_bytes(layout, e, ff)};
    } else if (type == GgmlType::F32) {
      m.f32[0] = reinterpret_cast<const float*>(t->data) + x * e * ff;
    } else {
      m.f32[0] = reinterpret_cast<const float*>(dst);
    }
  }
  if (done) {
    if (quantized)
      done({t, true, layout, false, packed_bytes(layout, e, ff) * sz(ne)});
    else
      done({t, false, layout, type != GgmlType::F32, sz(ff * e * ne) * sizeof(float)});
  }
}

// ---- Forward ----

MoeFfn::MoeFfn(const MoeShape& shape, int64_t max_rows) : s_(shape), max_rows_(max_rows) {
  const int64_t g = max_rows * shape.n_used;  // (row, chosen expert) pairs
  logits_.resize(sz(max_rows * shape.n_expert));
  experts_.resize(sz(g));
  weights_.resize(sz(g));
  slot_pos_.resize(sz(g));
  expert_begin_.resize(sz(shape.n_expert + 1));
  gathered_row_.resize(sz(g));
}

int64_t MoeFfn::active_experts() const {
  int64_t n = 0;
  for (int64_t x = 0; x < s_.n_expert; ++x) n += expert_begin_[sz(x + 1)] > expert_begin_[sz(x)];
  return n;
}

void MoeFfn::group_by_expert(int64_t rows) {
  const int64_t k = s_.n_used;
  std::fill(expert_begin_.begin(), expert_begin_.end(), 0);
  for (int64_t i = 0; i < rows * k; ++i) ++expert_begin_[sz(experts_[sz(i)] + 1)];
  for (int64_t x = 0; x < s_.n_expert; ++x) expert_begin_[sz(x + 1)] += expert_begin_[sz(x)];
  std::vector<int64_t> next(expert_begin_.begin(), expert_begin_.end() - 1);
  // Rows in ascending order within each expert.
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t p = next[sz(experts_[sz(r * k + j)])]++;
      gathered_row_[sz(p)] = static_cast<int32_t>(r);
      slot_pos_[sz(r * k + j)] = static_cast<int32_t>(p);
    }
}

void MoeFfn::make_tasks(int64_t n_cols, int n_threads, int n_step) {
  tasks_.clear();
  std::vector<int32_t> active;
  for (int64_t x = 0; x < s_.n_expert; ++x)
    if (expert_begin_[sz(x + 1)] > expert_begin_[sz(x)]) active.push_back(static_cast<int32_t>(x));
  // Largest experts first, so that the dynamic schedule ends with small tasks (balance only:
  // which thread runs a task never changes its bits).
  std::stable_sort(active.begin(), active.end(), [&](int32_t a, int32_t b) {
    return expert_begin_[sz(a + 1)] - expert_begin_[sz(a)] >
           expert_begin_[sz(b + 1)] - expert_begin_[sz(b)];
  });
  // About 4 tasks per thread: generation (k experts of one row) splits each expert's columns
  // so that every thread streams weights; a prompt touching many experts gets one task each.
  const int64_t units = (n_cols + n_step - 1) / n_step;
  const int64_t want = n_threads == 1 ? 1 : 4 * static_cast<int64_t>(n_threads);
  const int64_t n_active = static_cast<int64_t>(active.size());
  const int64_t chunks =
      std::min(units, std::max<int64_t>(1, (want + n_active - 1) / std::max<int64_t>(1, n_active)));
  for (int32_t x : active)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t u0 = units * c / chunks, u1 = units * (c + 1) / chunks;
      if (u0 < u1) tasks_.push_back({x, u0 * n_step, std::min(u1 * n_step, n_cols)});
    }
}

void MoeFfn::run_tasks(ThreadPool& pool, const std::vector<ExpertMatrix>& m,
                       const KernelSet& kernels, const QuantizedActs* x, const float* x_f32,
                       bool x_gathered, int64_t ldx, float* y, int64_t ldy) {
  std::atomic<size_t> next{0};
  auto run = [&](const Task& task) {
    const int64_t p0 = expert_begin_[sz(task.expert)];
    const int64_t rows = expert_begin_[sz(task.expert + 1)] - p0;
    const ExpertMatrix& w = m[sz(task.expert)];
    if (w.packed) {
      // The expert's rows are consecutive in the gathered activations: a view of them.
      const int64_t nb = x->blocks();
      QuantizedActs view;
      view.m = rows;
      view.k = x->k;
      view.q = x->q + p0 * x->k;
      view.d = x->d + p0 * nb;
      view.s = x->s + p0 * nb;
      view.sd = x->sd + p0 * nb;
      view.sl = x->sl + p0 * nb;
      const MatmulKernel* kernel = rows >= kernels.gemm_min_m ? kernels.gemm : kernels.gemv;
      kernel->fn(w.pm, view, y + p0 * ldy, ldy, 0, rows, task.n0, task.n1);
      return;
    }
    // Float path: each output is one ops::dot, as matmul_f32 computes it.
    for (int64_t nt = task.n0; nt < task.n1; nt += kFloatRowTile) {
      const int64_t nt_end = std::min(nt + kFloatRowTile, task.n1);
      for (int64_t p = p0; p < p0 + rows; ++p) {
        const float* xr = x_f32 + (x_gathered ? p : gathered_row_[sz(p)]) * ldx;
        for (int64_t n = nt; n < nt_end; ++n) y[p * ldy + n] = ops::dot(w.row(n), xr, w.k);
      }
    }
  };
  pool.run([&](int, int) {
    for (size_t i = next.fetch_add(1); i < tasks_.size(); i = next.fetch_add(1)) run(tasks_[i]);
  });
}

void MoeFfn::forward_fused(ThreadPool& pool, const MoeLayer& layer, QuantizeRowFn quantize,
                           const float* h, int64_t rows) {
  quantize_activations(pool, quantize, h, s_.n_embd, rows, s_.n_embd, h_acts_);
  row_tasks_.clear();
  for (int64_t x = 0; x < s_.n_expert; ++x) {
    const int64_t b = expert_begin_[sz(x)], n = expert_begin_[sz(x + 1)] - b;
    const int64_t chunks = (n + kChunkRows - 1) / kChunkRows;
    for (int64_t c = 0; c < chunks; ++c)
      row_tasks_.push_back({static_cast<int32_t>(x), b + n * c / chunks, b + n * (c + 1) / chunks});
  }
  // Largest chunks first, so that the dynamic schedule ends with small ones (balance only).
  std::stable_sort(row_tasks_.begin(), row_tasks_.end(),
                   [](const RowTask& a, const RowTask& b) { return a.p1 - a.p0 > b.p1 - b.p0; });
  if (chunk_scratch_.size() < sz(pool.size())) chunk_scratch_.resize(sz(pool.size()));
  std::atomic<size_t> next{0};
  pool.run([&](int t, int) {
    for (size_t i = next.fetch_add(1); i < row_tasks_.size(); i = next.fetch_add(1))
      run_chunk(layer, quantize, row_tasks_[i], chunk_scratch_[sz(t)]);
  });
}

void MoeFfn::run_chunk(const MoeLayer& layer, QuantizeRowFn quantize, const RowTask& task,
                       ChunkScratch& s) {
  const int64_t e = s_.n_embd, ff = s_.n_ff, n = task.p1 - task.p0;
  // The chunk's quantized h rows, gathered (the same bytes as quantizing them here).
  QuantizedActs& x = s.x.resize(n, e);
  for (int64_t i = 0; i < n; ++i)
    copy_act_row(h_acts_.acts(), gathered_row_[sz(task.p0 + i)], x, i);
  if (s.gate_up.size() < sz(n * 2 * ff)) s.gate_up.resize(sz(n * 2 * ff));
  if (s.ff.size() < sz(ff)) s.ff.resize(sz(ff));
  expert_matmul(layer.gate_up_kernels, layer.gate_up[sz(task.expert)].pm, x, s.gate_up.data(),
                2 * ff);
  QuantizedActs& a = s.ff_acts.resize(n, ff);
  for (int64_t i = 0; i < n; ++i) {
    const float* gate = s.gate_up.data() + i * 2 * ff;
    ops::swiglu_row(gate, gate + ff, s.ff.data(), ff);
    quantize_act_row(quantize, s.ff.data(), a, i);
  }
  expert_matmul(layer.down_kernels, layer.down[sz(task.expert)].pm, a, down_.data() + task.p0 * e,
                e);
}

void MoeFfn::forward(ThreadPool& pool, const MoeLayer& layer, QuantizeRowFn quantize,
                     const float* h, int64_t rows, float* out) {
  if (rows > max_rows_) fail("moe: ", rows, " rows but the scratch holds ", max_rows_);
  const int64_t e = s_.n_embd, k = s_.n_used, ne = s_.n_expert;
  const int64_t g = rows * k;

  // 1. Route every row: the router logits as a float matmul, each one ops::dot as moe_route_row
  // computes it (split over the experts: in generation the router, n_expert × n_embd floats,
  // 1 MB for 30B-A3B, is the one matrix of the layer a single thread would otherwise stream
  // alone; a prompt's rows pass over tiles of 16 router rows held in L2), then each row's
  // softmax and top-k.
  matmul_f32(pool, layer.router, ne, e, h, e, rows, logits_.data(), ne);
  pool.parallel_for(0, rows, ops::row_grain(8 * ne), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r)
      moe_route_logits(logits_.data() + r * ne, ne, k, experts_.data() + r * k,
                       weights_.data() + r * k);
  });
  group_by_expert(rows);
  if (down_.size() < sz(g * e)) down_.resize(sz(g * e));

  // 2-4, packed experts with at least one task per thread's share: each task an expert's whole
  // FFN over a chunk of its rows (forward_fused), the intermediates in the thread's caches.
  // Otherwise phase by phase, each phase's tasks an expert's column chunk (make_tasks): the
  // float path, and generation on many threads (k experts' columns split so every thread
  // streams weights).
  const bool gu_packed = layer.gate_up[0].packed;
  const bool down_packed = layer.down[0].packed;
  if (gu_packed && down_packed && active_experts() >= 4 * static_cast<int64_t>(pool.size())) {
    forward_fused(pool, layer, quantize, h, rows);
  } else {
    forward_phases(pool, layer, quantize, h, rows);
  }

  // 5. out = Σ_j w_j · down_j, j in expert-index order, from 0 (one thread per row).
  pool.parallel_for(0, rows, ops::row_grain(2 * k * e), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      float* o = out + r * e;
      std::fill(o, o + e, 0.0f);
      for (int64_t j = 0; j < k; ++j) {
        const float w = weights_[sz(r * k + j)];
        const float* d = down_.data() + slot_pos_[sz(r * k + j)] * e;
        for (int64_t i = 0; i < e; ++i) o[i] += w * d[i];
      }
    }
  });
}

void MoeFfn::forward_phases(ThreadPool& pool, const MoeLayer& layer, QuantizeRowFn quantize,
                            const float* h, int64_t rows) {
  const int64_t e = s_.n_embd, k = s_.n_used, ff = s_.n_ff;
  const int64_t g = rows * k;
  if (gate_up_.size() < sz(g * 2 * ff)) gate_up_.resize(sz(g * 2 * ff));
  if (ff_.size() < sz(g * ff)) ff_.resize(sz(g * ff));

  // 2. gate|up of each expert over its rows. Packed: quantize each row once, then gather the
  // quantized rows by expert (int8 copies) so that each expert's rows are one matrix.
  const bool gu_packed = layer.gate_up[0].packed;
  if (gu_packed) {
    quantize_activations(pool, quantize, h, e, rows, e, h_acts_);
    const QuantizedActs& src = h_acts_.acts();
    QuantizedActs& dst = gathered_.resize(g, e);
    pool.parallel_for(0, g, ops::row_grain(e), [&](int64_t p0, int64_t p1, int) {
      for (int64_t p = p0; p < p1; ++p) copy_act_row(src, gathered_row_[sz(p)], dst, p);
    });
  }
  const auto n_step = [](const KernelSet& ks, bool packed) {
    return packed ? std::max(ks.gemv->n_step, ks.gemm->n_step) : static_cast<int>(kFloatRowTile);
  };
  make_tasks(2 * ff, pool.size(), n_step(layer.gate_up_kernels, gu_packed));
  run_tasks(pool, layer.gate_up, layer.gate_up_kernels, gu_packed ? &gathered_.acts() : nullptr, h,
            false, e, gate_up_.data(), 2 * ff);

  // 3. silu(gate) ⊙ up per (row, expert).
  pool.parallel_for(0, g, ops::row_grain(8 * ff), [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* gate = gate_up_.data() + p * 2 * ff;
      ops::swiglu_row(gate, gate + ff, ff_.data() + p * ff, ff);
    }
  });

  // 4. down of each expert; its input rows are already in gathered order.
  const bool down_packed = layer.down[0].packed;
  if (down_packed) quantize_activations(pool, quantize, ff_.data(), ff, g, ff, ff_acts_);
  make_tasks(e, pool.size(), n_step(layer.down_kernels, down_packed));
  run_tasks(pool, layer.down, layer.down_kernels, down_packed ? &ff_acts_.acts() : nullptr,
            ff_.data(), true, ff, down_.data(), e);
}

}  // namespace xtile
