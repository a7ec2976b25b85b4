#include "model/config.h"

#include "base/error.h"
#include "gguf/gguf.h"

namespace xtile {

std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::llama:
      return "llama";
    case Arch::qwen2:
      return "qwen2";
    case Arch::qwen3:
      return "qwen3";
    case Arch::qwen3moe:
      return "qwen3moe";
  }
  return "unknown";
}

namespace {

int64_t positive(const gguf::File& f, const std::string& key) {
  const uint64_t v = f.get_uint(key);
  if (v == 0 || v > (uint64_t{1} << 31))
    fail("key '", key, "' has the value ", v, ", out of range");
  return static_cast<int64_t>(v);
}

}  // namespace

ModelConfig read_model_config(const gguf::File& f) {
  ModelConfig c;
  c.arch_name = f.get_string("general.architecture");
  if (c.arch_name == "llama") {
    c.arch = Arch::llama;
  } else if (c.arch_name == "qwen2") {
    c.arch = Arch::qwen2;
  } else if (c.arch_name == "qwen3") {
    c.arch = Arch::qwen3;
  } else if (c.arch_name == "qwen3moe") {
    c.arch = Arch::qwen3moe;
  } else {
    fail("unsupported architecture '", c.arch_name,
         "' (supported: llama, qwen2, qwen3, qwen3moe)");
  }
  c.name = f.get_string_or("general.name", "");
  const std::string a = c.arch_name + ".";
  c.n_embd = positive(f, a + "embedding_length");
  c.n_layer = positive(f, a + "block_count");
  // Everything per layer (weight tables, KV cache) is sized by block_count: the file must hold
  // the last layer's tensors before a hostile count can size gigabytes of empty tables.
  const std::string last_norm = "blk." + std::to_string(c.n_layer - 1) + ".attn_norm.weight";
  if (f.find_tensor(last_norm) == nullptr)
    fail("block_count is ", c.n_layer, " but the file has no tensor '", last_norm, "'");
  c.n_head = positive(f, a + "attention.head_count");
  c.n_head_kv =
      f.has(a + "attention.head_count_kv") ? positive(f, a + "attention.head_count_kv") : c.n_head;
  c.n_ff = positive(f, a + "feed_forward_length");
  c.n_ctx_train = positive(f, a + "context_length");
  if (f.has(a + "attention.key_length")) {
    c.head_dim = positive(f, a + "attention.key_length");
  } else {
    if (c.n_embd % c.n_head != 0)
      fail("embedding_length ", c.n_embd, " is not a multiple of head_count ", c.n_head,
           " and there is no attention.key_length");
    c.head_dim = c.n_embd / c.n_head;
  }
  if (f.has(a + "attention.value_length") &&
      static_cast<int64_t>(f.get_uint(a + "attention.value_length")) != c.head_dim)
    fail("attention.value_length ", f.get_uint(a + "attention.value_length"),
         " differs from the key length ", c.head_dim, ": not supported");
  if (c.n_head % c.n_head_kv != 0)
    fail("head_count ", c.n_head, " is not a multiple of head_count_kv ", c.n_head_kv);
  c.n_rot =
      f.has(a + "rope.dimension_count") ? positive(f, a + "rope.dimension_count") : c.head_dim;
  if (c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    fail("rope.dimension_count ", c.n_rot, " must be even and at most the head size ", c.head_dim);
  c.rms_eps = static_cast<float>(f.get_float_or(a + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_base = f.get_float_or(a + "rope.freq_base", 10000.0);
  if (!(c.rope_base > 0.0)) fail("rope.freq_base ", c.rope_base, " must be positive");
  c.rope_scaling = f.get_string_or(a + "rope.scaling.type", "none");
  const double factor = f.get_float_or(a + "rope.scaling.factor", 1.0);
  if (c.rope_scaling == "linear") {
    if (!(factor > 0.0)) fail("rope.scaling.factor ", factor, " must be positive");
    c.rope_scale_factor = factor;
  } else if (c.rope_scaling != "none") {
    fail("rope scaling type '", c.rope_scaling, "' is not supported (supported: none, linear)");
  }
  // llama.cpp: LLAMA_ROPE_TYPE_NORM for llama, NEOX for the qwen family.
  c.rope_mode = c.arch == Arch::llama ? ops::RopeMode::norm : ops::RopeMode::neox;
  c.qkv_bias = c.arch == Arch::qwen2;
  c.qk_norm = c.arch == Arch::qwen3 || c.arch == Arch::qwen3moe;
  if (c.arch == Arch::qwen3moe) {
    c.n_expert = positive(f, a + "expert_count");
    c.n_expert_used = positive(f, a + "expert_used_count");
    c.n_ff_exp = positive(f, a + "expert_feed_forward_length");
    if (c.n_expert_used > c.n_expert)
      fail("expert_used_count ", c.n_expert_used, " is larger than expert_count ", c.n_expert);
  }
  const gguf::TensorInfo& embd = f.tensor("token_embd.weight");
  if (embd.n_dims != 2) fail("tensor 'token_embd.weight' has ", embd.n_dims, " dims, expected 2");
  c.n_vocab = static_cast<int64_t>(embd.ne[1]);
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  return c;
}

}  // namespace xtile
