// Mixture-of-experts feed-forward (arch qwen3moe, Qwen3-30B-A3B class): the router, the expert
// weights repacked per expert at load, and the forward pass over a batch of rows.
//
// For one row h (n_embd floats) of a layer with n_expert experts, k = n_used of them chosen:
//   logits[e] = ops::dot(Wr[e], h)                   (float, the fixed 16-lane order)
//   p = softmax(logits)                              (ops::softmax_row)
//   chosen = the k largest p (ties: the lower expert index first), then sorted by expert index
//   w_j = p[chosen_j] / Σ_j p[chosen_j]    (Qwen3's norm_topk_prob; the sum in index order)
//   out = Σ_j w_j · down_j(silu(gate_j(h)) ⊙ up_j(h))    (j ascending, from 0.0f)
// Every reduction over experts runs in expert-index order, in every path (prompt and generation,
// every tier, any thread count), so a row's result depends only on the row (DESIGN.md §3.5).
//
// Compute (docs/MOE.md): the batch's rows are grouped by expert (index lists; each expert's rows
// in ascending order), the quantized activations of an expert's rows are gathered into one
// contiguous block, and each expert runs one GEMM (or GEMV when it has fewer rows than the
// tier's switch point) over its rows. The work is cut into tasks (expert × column chunk) that the
// threads take from a shared counter; the kernels' per-row results do not depend on M or on the
// column split (DESIGN.md §3), so neither does the output.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/aligned_buffer.h"
#include "cpu/thread_pool.h"
#include "gguf/gguf.h"
#include "kernels/registry.h"
#include "quant/weight_terms.h"

namespace xtile {

// The dimensions of a MoE layer (from the {arch}.expert_* keys).
struct MoeShape {
  int64_t n_embd = 0;
  int64_t n_expert = 0;  // expert_count
  int64_t n_used = 0;    // expert_used_count (k)
  int64_t n_ff = 0;      // expert_feed_forward_length
};

// One expert's matrix, n rows × k: either packed for the tier's kernels, or f32 rows. On the
// float path a gate|up matrix keeps its gate rows and its up rows where they are (two pointers,
// part_rows rows each); a down matrix has one part.
struct ExpertMatrix {
  int64_t n = 0;
  int64_t k = 0;
  bool packed = false;
  PackedMatrix pm;                           // when packed (pm.layout is the kernels' tag)
  const float* f32[2] = {nullptr, nullptr};  // when not packed
  int64_t part_rows = 0;
  const float* row(int64_t r) const { return f32[r / part_rows] + (r % part_rows) * k; }
};

struct MoeLayer {
  const float* router = nullptr;      // n_expert rows × n_embd (f32)
  std::vector<ExpertMatrix> gate_up;  // per expert: 2 n_ff × n_embd, gate rows then up rows
  std::vector<ExpertMatrix> down;     // per expert: n_embd × n_ff
  KernelSet gate_up_kernels;          // when packed
  KernelSet down_kernels;
};

// Reported once per GGUF expert tensor when it is done (its mapped pages already released when
// it was repacked or converted).
struct MoeTensorEvent {
  const gguf::TensorInfo* tensor = nullptr;
  bool packed = false;  // repacked into `layout`
  Layout layout = Layout::q8_0_rows;
  bool converted = false;  // float path, converted from F16/BF16 to f32 at load
  uint64_t bytes = 0;      // bytes it occupies after load (packed, or f32)
};
using MoeTensorDone = std::function<void(const MoeTensorEvent&)>;

// The experts of every layer of a model.
class MoeWeights {
 public:
  // Validates every layer's router and expert tensors (names, shapes, types) and plans the
  // arena; nothing is packed yet. `kernels` gives the tier's kernels for a quantized type (it
  // throws when the tier has none). dequantize: quantized experts go to the float path too
  // (LoadOptions::dequantize). Throws xtile::Error naming the file and the tensor.
  MoeWeights(gguf::File& file, const MoeShape& shape, int64_t n_layer,
             const std::function<KernelSet(GgmlType)>& kernels, bool dequantize = false);

  // Bytes of the GGUF tensors build() reads (for load progress).
  uint64_t source_bytes() const { return source_bytes_; }

  // Repacks (quantized types, per expert, gate|up fused) or converts (F16/BF16) every expert tensor,
  // releasing its mapped pages; F32 experts are used in place. `done` after each tensor.
  void build(ThreadPool& pool, const MoeTensorDone& done);

  const MoeShape& shape() const { return shape_; }
  const MoeLayer& layer(int64_t l) const { return layers_[static_cast<size_t>(l)]; }

 private:
  // A quantized type is repacked for the kernels unless everything is dequantized.
  bool packs(GgmlType t) const { return is_quantized_weight(t) && !dequantize_; }

  struct Source {  // one layer's GGUF tensors
    const gguf::TensorInfo* gate = nullptr;
    const gguf::TensorInfo* up = nullptr;
    const gguf::TensorInfo* down = nullptr;
    size_t gate_up_offset = 0;  // in the arena (packed or converted), expert 0
    size_t gate_up_stride = 0;  // bytes per expert
    size_t down_offset = 0;
    size_t down_stride = 0;
  };
  void build_gate_up(ThreadPool& pool, size_t l, const MoeTensorDone& done);
  void build_down(ThreadPool& pool, size_t l, const MoeTensorDone& done);
  void release(const gguf::TensorInfo& t);

  gguf::File& file_;
  MoeShape shape_;
  bool dequantize_ = false;
  std::vector<MoeLayer> layers_;
  std::vector<Source> sources_;
  std::vector<std::vector<float>> converted_routers_;
  AlignedBuffer arena_;
  size_t arena_bytes_ = 0;
  uint64_t source_bytes_ = 0;
};

// Routing of one row given its router logits (n_expert floats, overwritten with the softmax):
// experts[0..n_used) in ascending index order and their renormalized weights (see the top).
void moe_route_logits(float* logits, int64_t n_expert, int64_t n_used, int32_t* experts,
                      float* weights);
// The same from the row h: logits[e] = ops::dot(router + e * n_embd, h, n_embd) first.
// `scratch` holds n_expert floats.
void moe_route_row(const float* router, const float* h, const MoeShape& shape, float* scratch,
                   int32_t* experts, float* weights);

// The MoE feed-forward of a session: scratch for up to max_rows rows.
class MoeFfn {
 public:
  MoeFfn(const MoeShape& shape, int64_t max_rows);

  // out[r * n_embd ..] = MoE FFN of h[r * n_embd ..] for r < rows (rows <= max_rows).
  // `quantize` is the tier's activation quantizer (used when the experts are packed).
  void forward(ThreadPool& pool, const MoeLayer& layer, QuantizeRowFn quantize, const float* h,
               int64_t rows, float* out);

  // The routing of the last forward's rows (tests): n_used experts and weights per row.
  const std::vector<int32_t>& experts() const { return experts_; }
  const std::vector<float>& weights() const { return weights_; }

 private:
  struct Task {
    int32_t expert;
    int64_t n0, n1;  // output columns
  };
  struct RowTask {  // the fused path: gathered positions [p0, p1) of one expert
    int32_t expert;
    int64_t p0, p1;
  };
  // A thread's scratch on the fused path (grows, never shrinks): one row chunk of one expert.
  struct ChunkScratch {
    ActBuffer x;                 // the chunk's quantized h rows, gathered
    ActBuffer ff_acts;           // quantized silu(gate) ⊙ up
    std::vector<float> gate_up;  // chunk rows × 2 n_ff
    std::vector<float> ff;       // chunk rows × n_ff
  };
  void group_by_expert(int64_t rows);
  int64_t active_experts() const;
  // Every packed expert's whole FFN (gate|up, SwiGLU, down) as one task per row chunk.
  void forward_fused(ThreadPool& pool, const MoeLayer& layer, QuantizeRowFn quantize,
                     const float* h, int64_t rows);
  // Steps 2-4 phase by phase: every expert's gate|up, then SwiGLU, then every expert's down.
  void forward_phases(ThreadPool& pool, const MoeLayer& layer, QuantizeRowFn quantize,
                      const float* h, int64_t rows);
  void run_chunk(const MoeLayer& layer, QuantizeRowFn quantize, const RowTask& task,
                 ChunkScratch& s);
  void make_tasks(int64_t n_cols, int n_threads, int n_step);
  // y[p, n) for the gathered rows p of each task's expert, columns [n0, n1) of m.
  void run_tasks(ThreadPool& pool, const std::vector<ExpertMatrix>& m, const KernelSet& kernels,
                 const QuantizedActs* x, const float* x_f32, bool x_gathered, int64_t ldx, float* y,
                 int64_t ldy);

  MoeShape s_;
  int64_t max_rows_;
  std::vector<float> logits_;          // rows × n_expert
  std::vector<int32_t> experts_;       // rows × n_used, ascending per row
  std::vector<float> weights_;         // rows × n_used
  std::vector<int32_t> slot_pos_;      // rows × n_used: gathered position of (row, slot)
  std::vector<int64_t> expert_begin_;  // n_expert + 1: gathered positions of each expert
  std::vector<int32_t> gathered_row_;  // gathered position → source row
  std::vector<Task> tasks_;
  std::vector<RowTask> row_tasks_;
  std::vector<ChunkScratch> chunk_scratch_;  // per thread (fused path)
  ActBuffer h_acts_;            // quantized h, rows × n_embd
  // Phase by phase (float experts, or too few experts for one task per thread each), sized
  // when first used:
  ActBuffer gathered_;          // quantized h gathered by expert, rows·k × n_embd
  ActBuffer ff_acts_;           // quantized silu(gate) ⊙ up, rows·k × n_ff (already gathered)
  std::vector<float> gate_up_;  // rows·k × 2 n_ff
  std::vector<float> ff_;       // rows·k × n_ff
  std::vector<float> down_;     // rows·k × n_embd (both paths)
};

}  // namespace xtile
