#include "model/ftype.h"

#include <algorithm>
#include <cctype>
#include <numeric>

#include "base/error.h"
#include "gguf/gguf.h"

namespace xtile {

namespace {

// LLAMA_FTYPE_* values (llama.h) of the ftypes xtile writes.
enum FileType : uint32_t {
  kAllF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ5_1 = 9,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kIQ4_NL = 25,
  kIQ4_XS = 30,
  kBF16 = 32,
};

constexpr Ftype kFtypes[] = {
    {"f32", kAllF32, GgmlType::F32},       {"f16", kF16, GgmlType::F16},
    {"bf16", kBF16, GgmlType::BF16},       {"q8_0", kQ8_0, GgmlType::Q8_0},
    {"q4_0", kQ4_0, GgmlType::Q4_0},       {"q4_1", kQ4_1, GgmlType::Q4_1},
    {"q5_0", kQ5_0, GgmlType::Q5_0},       {"q5_1", kQ5_1, GgmlType::Q5_1},
    {"iq4_nl", kIQ4_NL, GgmlType::IQ4_NL}, {"iq4_xs", kIQ4_XS, GgmlType::IQ4_XS},
    {"q4_k_s", kQ4_K_S, GgmlType::Q4_K},   {"q4_k_m", kQ4_K_M, GgmlType::Q4_K},
    {"q5_k_s", kQ5_K_S, GgmlType::Q5_K},   {"q5_k_m", kQ5_K_M, GgmlType::Q5_K},
    {"q6_k", kQ6_K, GgmlType::Q6_K},
};

bool is_float(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}
bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

// llama-quantize's tensor categories: substring matches, tested in this order.
enum class Category {
  kOutput,
  kTokenEmbd,
  kAttnQkv,
  kAttnKvB,
  kAttnV,
  kAttnK,
  kAttnQ,
  kAttnOutput,
  kFfnUp,
  kFfnGate,
  kFfnDown,
  kOther,
};

Category category_of(std::string_view name) {
  if (name == "output.weight") return Category::kOutput;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight")
    return Category::kTokenEmbd;
  if (contains(name, "attn_qkv.weight")) return Category::kAttnQkv;
  if (contains(name, "attn_kv_b.weight")) return Category::kAttnKvB;
  if (contains(name, "attn_v.weight")) return Category::kAttnV;
  if (contains(name, "attn_k.weight")) return Category::kAttnK;
  if (contains(name, "attn_q.weight")) return Category::kAttnQ;
  if (contains(name, "attn_output.weight")) return Category::kAttnOutput;
  if (contains(name, "ffn_up")) return Category::kFfnUp;
  if (contains(name, "ffn_gate")) return Category::kFfnGate;
  if (contains(name, "ffn_down")) return Category::kFfnDown;
  return Category::kOther;
}

// The value tensors: llama counts these together for the attn_v recipe.
bool is_attn_v_like(Category c) {
  return c == Category::kAttnV || c == Category::kAttnQkv || c == Category::kAttnKvB;
}

// "blk.N." -> N, or -1 (llama parses it with sscanf("blk.%d.")).
int layer_of(std::string_view name) {
  if (!name.starts_with("blk.")) return -1;
  size_t i = 4;
  const bool negative = i < name.size() && name[i] == '-';
  if (negative || (i < name.size() && name[i] == '+')) ++i;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  long v = 0;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && v < 1000000)
    v = v * 10 + (name[i++] - '0');
  return static_cast<int>(negative ? -v : v);
}

// The more-bits layers of Q4_K_M / Q5_K_M: the first and last eighth, and every third between.
bool use_more_bits(int i, int n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// Models llama's loader classes as LLM_TYPE_70B (its attn_v gets Q5_K instead of Q3_K/Q4_K).
bool is_70b(const ModelShape& s) {
  if (s.arch == "llama") return s.n_expert != 8 && s.n_layer == 80 && s.n_head != s.n_head_kv;
  if (s.arch == "qwen2" || s.arch == "deci" || s.arch == "olmo") return s.n_layer == 80;
  if (s.arch == "jais2") return s.n_layer == 68;
  return false;
}

// Where the row length ne0 is not a multiple of the chosen type's block: llama's substitute
// (tensor_type_fallback), F16 if that does not divide either; or, for types llama has no
// substitute for, the source type (llama-quantize stops with an error there).
GgmlType fallback(GgmlType chosen, const TensorDesc& t) {
  if (t.ne0 % ggml_traits(chosen).block_size == 0) return chosen;
  GgmlType sub;
  switch (chosen) {
    case GgmlType::IQ4_XS:
      sub = GgmlType::IQ4_NL;
      break;
    case GgmlType::Q4_K:
      sub = GgmlType::Q5_0;
      break;
    case GgmlType::Q5_K:
      sub = GgmlType::Q5_1;
      break;
    case GgmlType::Q6_K:
      sub = GgmlType::Q8_0;
      break;
    default:
      return t.type;
  }
  return t.ne0 % ggml_traits(sub).block_size == 0 ? sub : GgmlType::F16;
}

// llama's counters while it walks the tensors in its order.
struct RecipeState {
  bool tied = true;    // no output.weight: token_embd is also the output matrix
  int n_attn_v = 0;    // attn_v-like tensors in the model
  int i_attn_v = 0;    // attn_v-like tensors seen so far
  int i_ffn_down = 0;  // ffn_down tensors seen so far (the layer index of dense models)
};

// llama_tensor_get_type_impl for the ftypes of kFtypes (the IQ1/IQ2/IQ3/Q2_K/Q3_K branches are
// for ftypes xtile does not write).
GgmlType recipe_type(const Ftype& f, const ModelShape& s, const TensorDesc& t, Category c,
                     RecipeState& st) {
  const uint32_t ft = f.file_type;
  const bool falcon = s.arch == "falcon";
  const uint32_t n_gqa = s.n_head_kv ? s.n_head / s.n_head_kv : 0;
  GgmlType type = f.base;
  if (c == Category::kOutput || (st.tied && c == Category::kTokenEmbd)) {
    // The output matrix is the most sensitive: Q6_K unless the file is Q8_0 (or the base block
    // does not divide the row, or Falcon: Q8_0).
    if (falcon || t.ne0 % ggml_traits(f.base).block_size != 0) {
      type = GgmlType::Q8_0;
    } else if (f.base != GgmlType::Q8_0) {
      type = GgmlType::Q6_K;
    }
  } else if (c == Category::kTokenEmbd) {
    // An untied token_embd keeps the base type for every ftype here.
  } else if (is_attn_v_like(c)) {
    if ((ft == kIQ4_NL || ft == kIQ4_XS) && n_gqa >= 4) {
      type = GgmlType::Q5_K;
    } else if ((ft == kQ4_K_M || ft == kQ5_K_M) && use_more_bits(st.i_attn_v, st.n_attn_v)) {
      type = GgmlType::Q6_K;
    } else if (ft == kQ4_K_S && st.i_attn_v < 4) {
      type = GgmlType::Q5_K;
    }
    if (is_70b(s) && (type == GgmlType::Q3_K || type == GgmlType::Q4_K)) type = GgmlType::Q5_K;
    if (s.n_expert == 8) type = GgmlType::Q8_0;  // Mixtral-style 8-expert models
    ++st.i_attn_v;
  } else if (c == Category::kAttnK) {
    if (s.n_expert == 8) type = GgmlType::Q8_0;
  } else if (c == Category::kFfnDown) {
    // MoE files may order experts oddly, so llama reads the layer from the name there.
    int i = st.i_ffn_down;
    const int n = static_cast<int>(s.n_layer);
    if (s.n_expert > 1) {
      i = layer_of(t.name);
      if (i < 0 || i >= n)
        fail("quantize: cannot tell the layer (0..", n - 1, ") of tensor '", t.name, "'");
    }
    if (ft == kQ4_K_M) {
      if (falcon) {
        type = i < n / 16 ? GgmlType::Q6_K : use_more_bits(i, n) ? GgmlType::Q5_K : GgmlType::Q4_K;
      } else if (use_more_bits(i, n)) {
        type = GgmlType::Q6_K;
      }
    } else if (i < n / 8 && (ft == kIQ4_NL || ft == kIQ4_XS)) {  // (without an imatrix)
      type = GgmlType::Q5_K;
    } else if (ft == kQ5_K_M && use_more_bits(i, n)) {
      type = GgmlType::Q6_K;
    } else if (ft == kQ4_K_S && !falcon && i < n / 8) {
      type = GgmlType::Q5_K;
    }
    ++st.i_ffn_down;
  } else if (c == Category::kAttnOutput) {
    const bool bumped = ft == kIQ4_NL || ft == kQ4_K_S || ft == kQ4_K_M || ft == kIQ4_XS;
    if (!falcon && s.n_expert == 8 && bumped) type = GgmlType::Q5_K;
  }
  return type;
}

}  // namespace

std::span<const Ftype> ftypes() {
  return kFtypes;
}

const Ftype* find_ftype(std::string_view name) {
  std::string lower(name);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const Ftype& f : kFtypes)
    if (f.name == lower) return &f;
  return nullptr;
}

std::string ftype_names() {
  std::string s;
  for (const Ftype& f : kFtypes) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s;
}

const Ftype& ftype_by_name(std::string_view name) {
  const Ftype* f = find_ftype(name);
  if (!f) fail("unknown type '", name, "'; types: ", ftype_names());
  return *f;
}

const Ftype* ftype_for_type(GgmlType type) {
  // q4_k_m over q4_k_s and q5_k_m over q5_k_s: the common choice for a K base.
  if (type == GgmlType::Q4_K) return find_ftype("q4_k_m");
  if (type == GgmlType::Q5_K) return find_ftype("q5_k_m");
  for (const Ftype& f : kFtypes)
    if (f.base == type) return &f;
  return nullptr;
}

ModelShape ModelShape::from_gguf(const gguf::File& file) {
  ModelShape s;
  s.arch = file.get_string_or("general.architecture", "");
  const std::string a = s.arch + ".";
  auto first_uint = [&](const std::string& key) -> uint32_t {
    const gguf::Value* v = file.find(key);
    if (!v) return 0;
    if (v->type == gguf::ValueType::ARRAY) {  // per-layer values: llama reads layer 0
      const auto& items = std::get<gguf::Array>(v->data).items;
      if (items.empty()) return 0;
      const gguf::Value& e = items.front();
      if (const auto* u = std::get_if<uint64_t>(&e.data)) return static_cast<uint32_t>(*u);
      if (const auto* i = std::get_if<int64_t>(&e.data)) return static_cast<uint32_t>(*i);
      return 0;
    }
    return static_cast<uint32_t>(file.get_uint(key));
  };
  s.n_layer = first_uint(a + "block_count");
  s.n_head = first_uint(a + "attention.head_count");
  s.n_head_kv = first_uint(a + "attention.head_count_kv");
  if (s.n_head_kv == 0 && !file.has(a + "attention.head_count_kv")) s.n_head_kv = s.n_head;
  s.n_expert = first_uint(a + "expert_count");
  return s;
}

bool allows_quantization(std::string_view name, uint32_t n_dims) {
  if (n_dims < 2 || !ends_with(name, "weight")) return false;
  if (contains(name, "_norm.weight") || contains(name, "ffn_gate_inp.weight")) return false;
  // Small tensors of other architectures that llama-quantize leaves alone.
  static constexpr std::string_view kKept[] = {"altup",
                                               "laurel",
                                               "per_layer_model_proj",
                                               "ssm_conv1d",
                                               "shortconv.conv.weight",
                                               "time_mix_first.weight",
                                               "time_mix_w0.weight",
                                               "time_mix_w1.weight",
                                               "time_mix_w2.weight",
                                               "time_mix_v0.weight",
                                               "time_mix_v1.weight",
                                               "time_mix_v2.weight",
                                               "time_mix_a0.weight",
                                               "time_mix_a1.weight",
                                               "time_mix_a2.weight",
                                               "time_mix_g1.weight",
                                               "time_mix_g2.weight",
                                               "time_mix_decay_w1.weight",
                                               "time_mix_decay_w2.weight",
                                               "time_mix_lerp_fused.weight",
                                               "attn_rel_b.weight",
                                               ".position_embd",
                                               "sam.pos_embd",
                                               "sam.neck.",
                                               "sam.net_",
                                               ".rel_pos",
                                               ".patch_embd",
                                               ".patch_merger"};
  for (std::string_view part : kKept)
    if (contains(name, part)) return false;
  return name != "position_embd.weight" && name != "token_types.weight";
}

std::vector<GgmlType> choose_types(const Ftype& ftype, const ModelShape& shape,
                                   std::span<const TensorDesc> tensors,
                                   const TypeRuleOptions& options) {
  std::vector<GgmlType> out(tensors.size());
  RecipeState st;
  for (const TensorDesc& t : tensors) {
    const Category c = category_of(t.name);
    if (is_attn_v_like(c)) ++st.n_attn_v;
    if (c == Category::kOutput) st.tied = false;
  }
  // llama's order: by layer (non-layer tensors first), then by name.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
    if (la != lb) return la < lb;
    return tensors[a].name < tensors[b].name;
  });
  const bool recipe = !options.pure && !is_float(ftype.base);
  for (size_t idx : order) {
    const TensorDesc& t = tensors[idx];
    if (!allows_quantization(t.name, t.n_dims)) {
      out[idx] = t.type;
      continue;
    }
    if (!recipe) {
      // No recipe: the base type where its block divides the row, else the source type.
      const bool fits = t.ne0 % ggml_traits(ftype.base).block_size == 0;
      out[idx] = fits ? ftype.base : t.type;
      continue;
    }
    out[idx] = fallback(recipe_type(ftype, shape, t, category_of(t.name), st), t);
  }
  return out;
}

}  // namespace xtile
