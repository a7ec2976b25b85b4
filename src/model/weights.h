// The weight store ("repack buffer"): a GGUF model mmap'd, every quantized 2-D weight repacked
// once into the layout of the chosen tier's kernels, the original pages released.
//
// - Q8_0/Q4_0 matrices (K is then always a multiple of 32) are packed with pack_rows into one
//   arena, in parallel over row ranges. Q|K|V are fused into one matrix, and gate|up into one,
//   by packing each part's rows after the previous part's (the parts share K; in the x16
//   layouts every part but the last must have a multiple of 16 rows so that the next one starts
//   on a group boundary, which every real model satisfies; otherwise the parts stay separate).
//   After packing, the tensor's mapped pages are released (MappedFile::release), so the resident
//   size after load is about the model size, not twice it.
// - The float path: F32 matrices are used in place from the mapping; F16/BF16 matrices are
//   converted once, at load, to f32 (exact conversions) in a second arena, then released. This
//   doubles an F16 model's memory but keeps the float matmul one plain f32 dot per output.
// - qwen3moe experts (3-D tensors, one matrix per slice) are packed per expert, gate|up fused,
//   by MoeWeights (model/moe.h); every expert tensor counts as one repack.
// - 1-D tensors (norms, biases) are read in place (F32) or converted to f32.
// - token_embd lookups dequantize one row: from the GGUF rows in the mapping, or, when
//   token_embd is also the output matrix (tied) and was repacked, from the packed matrix
//   (model/embedding.h), so its original bytes can be released too.
//
// Every repack increments a process-wide counter (repack_count()) that tests read: loading a
// model adds one per repacked tensor, inference adds none.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/aligned_buffer.h"
#include "cpu/thread_pool.h"
#include "gguf/gguf.h"
#include "kernels/registry.h"
#include "model/config.h"
#include "model/moe.h"

namespace xtile {

// One weight matrix, n output rows × k, either repacked for the tier's kernels or float rows.
struct Matrix {
  std::string name;                      // GGUF tensor name; "a+b+c" for fused matrices
  GgmlType source_type = GgmlType::F32;  // type in the file
  int64_t n = 0;
  int64_t k = 0;
  bool packed = false;
  PackedMatrix pm;             // when packed (pm.layout is the tag kernels check)
  const float* f32 = nullptr;  // when not packed: n × k row-major
};

// y = W x for a projection whose output columns are one or more matrices side by side
// ([q | k | v], [gate | up]): a single fused Matrix when possible, else one per part.
struct Projection {
  std::vector<Matrix> parts;
  int64_t n = 0;  // total output columns
  int64_t k = 0;
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // [n_embd]
  const float* ffn_norm = nullptr;   // [n_embd]
  const float* q_bias = nullptr;     // qwen2: [q_dim], [kv_dim], [kv_dim]
  const float* k_bias = nullptr;
  const float* v_bias = nullptr;
  const float* q_norm = nullptr;  // qwen3: [head_dim]
  const float* k_norm = nullptr;
  Projection qkv;      // n_embd → q_dim + 2 kv_dim, columns [q | k | v]
  Projection out;      // q_dim → n_embd
  Projection gate_up;  // n_embd → 2 n_ff, columns [gate | up]  (dense FFN)
  Projection down;     // n_ff → n_embd
  const MoeLayer* moe = nullptr;  // qwen3moe: the router and experts (gate_up, down empty)
};

// Called between tensors during load: bytes of source tensors done, total, current tensor.
using LoadProgress = std::function<void(uint64_t done, uint64_t total, std::string_view tensor)>;

struct LoadOptions {
  Tier tier = Tier::ref;
  bool fuse = true;  // fuse Q|K|V and gate|up (false: one matrix per tensor, for tests)
  // Every quantized matrix dequantized to f32 at load and run on the float path: the exact
  // math of the weights as stored, with f32 activations (tests check the dequantizers against
  // the fixtures' float64 oracle this way). 4-8× the memory of the packed weights.
  bool dequantize = false;
  LoadProgress progress;
};

struct LoadStats {
  struct Packing {
    GgmlType type;
    Layout layout;
    int tensors = 0;
    uint64_t bytes = 0;
  };
  std::vector<Packing> packed;  // per (type, layout)
  int float_tensors = 0;        // matrices on the float path
  uint64_t float_bytes = 0;     // their f32 bytes
  int converted_tensors = 0;    // of which converted from F16/BF16 at load
  int fused_matrices = 0;
  uint64_t repacks = 0;
  double seconds = 0.0;
  std::string summary() const;  // one line for the CLI
};

class WeightStore {
 public:
  // Opens, validates (names and shapes of every tensor), repacks; throws xtile::Error naming
  // the file and the problem (missing tensor, wrong shape, unsupported type or architecture).
  static std::unique_ptr<WeightStore> load(const std::string& path, ThreadPool& pool,
                                           const LoadOptions& options);
  // load()'s first phase alone, on a parsed file: the model config, then every tensor's name,
  // shape and type and the layout plan for `tier`, throwing what load() would; allocates no
  // arena and packs nothing (fuzz/model_fuzz.cpp runs it on every input that parses).
  static void check_plan(std::unique_ptr<gguf::File> file, Tier tier);

  const ModelConfig& config() const { return config_; }
  const gguf::File& file() const { return *file_; }
  Tier tier() const { return tier_; }
  const LoadStats& stats() const { return stats_; }

  const LayerWeights& layer(int64_t i) const { return layers_[static_cast<size_t>(i)]; }
  const float* output_norm() const { return output_norm_; }
  const Projection& output() const { return output_; }
  // rope_freqs.weight (Llama 3: per-pair frequency divisors, n_rot / 2), or null.
  const float* rope_freqs() const { return rope_freqs_; }
  // The experts of every layer (qwen3moe), or null for a dense model.
  const MoeWeights* moe() const { return moe_.get(); }

  // The kernels for a packed matrix's type (chosen once at load).
  const KernelSet& kernels(GgmlType type) const;
  // The activation quantizer of the tier (every tier's writes the same bytes).
  QuantizeRowFn quantize_fn() const { return quantize_fn_; }
  std::string_view quantize_name() const { return quantize_name_; }
  // Kernel names used, for the run summary ("q4_0_gemv_... / q4_0_gemm_...").
  std::vector<std::string> kernel_names() const;

  // token_embd row `token` (0 <= token < n_vocab) as n_embd floats.
  void embed(int32_t token, float* out) const;

 private:
  WeightStore() = default;
  friend class WeightLoader;

  std::unique_ptr<gguf::File> file_;
  ModelConfig config_;
  Tier tier_ = Tier::ref;
  std::vector<LayerWeights> layers_;
  const float* output_norm_ = nullptr;
  Projection output_;
  const float* rope_freqs_ = nullptr;
  // token_embd: packed (tied, repacked), float rows, or GGUF rows in the mapping.
  const Matrix* embd_packed_ = nullptr;
  const float* embd_f32_ = nullptr;
  const uint8_t* embd_rows_ = nullptr;
  GgmlType embd_type_ = GgmlType::F32;
  std::vector<KernelSet> kernel_sets_;
  QuantizeRowFn quantize_fn_ = nullptr;
  std::string_view quantize_name_;
  AlignedBuffer packed_arena_;
  AlignedBuffer float_arena_;
  std::unique_ptr<MoeWeights> moe_;  // its own arena: experts are packed one slice at a time
  std::vector<std::vector<float>> converted_vectors_;
  LoadStats stats_;
};

// Tensors repacked by this process so far (all stores).
uint64_t repack_count();

}  // namespace xtile
