// A model's hyper-parameters, read once from the GGUF metadata into a fixed struct.
#pragma once

#include <cstdint>
#include <string>

#include "ops/ops.h"

namespace xtile {
namespace gguf {
class File;
}

enum class Arch { llama, qwen2, qwen3, qwen3moe };

struct ModelConfig {
  Arch arch = Arch::llama;
  std::string arch_name;  // general.architecture
  std::string name;       // general.name ("" when absent)
  int64_t n_embd = 0;     // hidden size
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;  // attention.key_length, else n_embd / n_head
  int64_t n_rot = 0;     // rope.dimension_count, else head_dim
  int64_t n_ff = 0;
  int64_t n_vocab = 0;  // rows of token_embd.weight
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  double rope_base = 10000.0;
  // rope.scaling.*: "none" or "linear" (positions divided by rope_scale_factor). yarn and other
  // types are rejected at load rather than silently run unscaled.
  std::string rope_scaling = "none";
  double rope_scale_factor = 1.0;
  ops::RopeMode rope_mode = ops::RopeMode::norm;
  bool tied_output = false;  // no output.weight: logits use token_embd.weight
  bool qkv_bias = false;     // qwen2
  bool qk_norm = false;      // qwen3, qwen3moe: RMSNorm per head on Q and K before RoPE
  // qwen3moe: every layer's FFN is a mixture of experts (model/moe.h); 0 experts: dense FFN.
  int64_t n_expert = 0;       // expert_count
  int64_t n_expert_used = 0;  // expert_used_count (top-k)
  int64_t n_ff_exp = 0;       // expert_feed_forward_length

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
};

// Reads and checks the config; throws xtile::Error naming the key or the unknown architecture.
ModelConfig read_model_config(const gguf::File& file);

std::string_view arch_name(Arch a);

}  // namespace xtile
