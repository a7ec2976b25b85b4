// Synthetic models: GGUF files with RANDOM weights but exactly the tensor names, shapes and
// metadata keys that llama.cpp's convert_hf_to_gguf.py writes for llama, qwen2, qwen3 and
// qwen3moe, so that loaders, kernels and benchmarks can run at real shapes without downloading
// real weights. A quantized file has the per-tensor types llama-quantize would give it for the
// same file type (model/ftype.h: Q6_K output, bumped attn_v/ffn_down, ...). Values are random but
// sane (a forward pass stays finite); quantized tensors are generated directly as random blocks
// (model/synth_blocks.h, no float quantization), fast enough to write the ~17 GB Qwen3-30B-A3B
// Q4_0 in minutes. Output is a pure function of (options, seed): the thread count never changes a
// byte.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gguf/ggml_types.h"
#include "gguf/gguf.h"

namespace xtile {
class ThreadPool;
}

namespace xtile::synth {

// Shapes of one model family member, as in its Hugging Face config.json.
struct Preset {
  std::string name;
  std::string arch;  // llama, qwen2, qwen3, qwen3moe
  uint32_t hidden = 0;
  uint32_t layers = 0;
  uint32_t ffn = 0;  // feed_forward_length (dense FFN; for qwen3moe the config's value)
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t head_dim = 0;
  uint32_t vocab = 0;
  uint32_t context = 0;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied = false;           // no output.weight: the output projection reuses token_embd.weight
  uint32_t n_expert = 0;       // qwen3moe only
  uint32_t n_expert_used = 0;  // qwen3moe only
  uint32_t expert_ffn = 0;     // qwen3moe only
};

const std::vector<Preset>& presets();
// The preset called `name`; throws xtile::Error listing every preset name when unknown.
const Preset& find_preset(std::string_view name);
std::string preset_names();  // "qwen3-0.6b, qwen3-1.7b, ..."

// The tensor types synth writes: f32, f16, bf16 and the quantized types of every ftype
// (q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K, iq4_nl, iq4_xs).
bool supported_type(GgmlType t);
// llama.cpp's general.file_type (LLAMA_FTYPE_*) for a model whose weights are `t`.
uint32_t file_type_for(GgmlType t);

struct Options {
  std::string preset;
  // One of llama-quantize's file types by name (q4_0, q4_k_m, iq4_xs, ...; model/ftype.h): the
  // weights get its per-tensor types. Empty: every 2-D/3-D weight (token_embd included) is `type`.
  std::string ftype;
  bool pure = false;              // with ftype: every weight in its base type (llama's --pure)
  GgmlType type = GgmlType::F32;  // without ftype: the type of every weight
  uint64_t seed = 42;
  uint32_t layers = 0;      // 0: the preset's block_count; else 1..preset's
  uint32_t vocab_size = 0;  // 0: the preset's vocabulary size
  std::string vocab_path;   // GGUF whose tokenizer.* keys are copied ("": generated vocab)
  uint32_t alignment = 32;  // general.alignment is written only when this is not 32
  int threads = 1;          // generation threads (never changes the output)
};

// How a tensor's values are drawn.
enum class Init {
  kWeight,  // matrices and the router: mean 0, std 0.02
  kNorm,    // RMSNorm gains: 1 + noise of std 0.02
  kBias,    // attention biases: mean 0, std 0.02
};

struct TensorSpec {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<uint64_t> ne;  // ggml order: ne[0] is the row (innermost) dimension
  Init init = Init::kWeight;
  uint64_t elements() const;
  uint64_t bytes() const;
};

// Everything that will be written, resolved from Options (preset cut to --layers, vocabulary
// loaded and padded). Building the plan is cheap; only write() generates tensor data.
struct Plan {
  Preset preset;                  // with layers and vocab as written
  std::string ftype;              // the file type written ("q4_k_m"; "q4_0 pure")
  GgmlType type = GgmlType::F32;  // its base type
  uint64_t seed = 42;
  uint32_t alignment = 32;
  std::vector<std::pair<std::string, gguf::Value>> metadata;  // in file order
  std::vector<TensorSpec> tensors;                            // in file order
  uint64_t parameters() const;
  uint64_t tensor_bytes() const;
};

Plan make_plan(const Options& options);

// Fills `dst` (spec.bytes() long) with the tensor's deterministic random contents. The work is
// cut into fixed chunks, each seeded from (seed, tensor name, chunk index), so the bytes do not
// depend on `pool` (null: single-threaded). `on_chunk(bytes)` is called by the calling thread
// as work completes (progress); it may be empty.
void fill_tensor(const TensorSpec& spec, uint64_t seed, std::span<uint8_t> dst, ThreadPool* pool,
                 const std::function<void(uint64_t)>& on_chunk = {});

// Progress of a write: bytes of tensor data generated so far, the total, the current tensor.
using Progress = std::function<void(uint64_t done, uint64_t total, std::string_view tensor)>;

// A gguf::Writer holding the plan's metadata and tensors; data is generated tensor by tensor
// while the writer writes. `pool` and `progress` must outlive the writer's write().
gguf::Writer make_writer(const Plan& plan, ThreadPool* pool, Progress progress = {});

// make_plan + make_writer + write(path), with a pool of options.threads.
void write_model(const Options& options, const std::string& path, Progress progress = {});

// The text written to general.description and printed by `xtile synth`.
inline constexpr std::string_view kRandomWeightsNotice =
    "weights are RANDOM (synthetic model for benchmarks and tests)";

}  // namespace xtile::synth
