#include "model/synth.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <memory>

#include "base/error.h"
#include "base/fp16.h"
#include "cpu/thread_pool.h"
#include "model/ftype.h"
#include "model/synth_blocks.h"

namespace xtile::synth {

namespace {

// Real shapes from each model's config.json. The tiny presets keep every dimension a multiple
// of 32 so that every weight can be Q8_0/Q4_0, and differ from each other in the ways the
// architectures differ (tied output, head_dim * n_head != hidden, biases, experts).
std::vector<Preset> make_presets() {
  std::vector<Preset> p;
  auto add = [&p](Preset x) { p.push_back(std::move(x)); };
  // name, arch, hidden, layers, ffn, n_head, n_head_kv, head_dim, vocab, context, rope, eps, tied
  add({"qwen3-0.6b", "qwen3", 1024, 28, 3072, 16, 8, 128, 151936, 40960, 1e6f, 1e-6f, true});
  add({"qwen3-1.7b", "qwen3", 2048, 28, 6144, 16, 8, 128, 151936, 40960, 1e6f, 1e-6f, true});
  add({"qwen3-8b", "qwen3", 4096, 36, 12288, 32, 8, 128, 151936, 40960, 1e6f, 1e-6f, false});
  add({"llama-3.2-1b", "llama", 2048, 16, 8192, 32, 8, 64, 128256, 131072, 500000.0f, 1e-5f, true});
  add({"llama-3-8b", "llama", 4096, 32, 14336, 32, 8, 128, 128256, 8192, 500000.0f, 1e-5f, false});
  add({"qwen3-30b-a3b", "qwen3moe", 2048, 48, 6144, 32, 4, 128, 151936, 40960, 1e6f, 1e-6f, false,
       128, 8, 768});
  add({"tiny-llama", "llama", 128, 2, 256, 4, 2, 32, 512, 512, 10000.0f, 1e-5f, false});
  add({"tiny-qwen2", "qwen2", 128, 2, 256, 4, 2, 32, 512, 512, 1e6f, 1e-6f, false});
  // head_dim * n_head = 256 != hidden = 128, as in Qwen3 (1024 vs 2048), and tied like 0.6B.
  add({"tiny-qwen3", "qwen3", 128, 2, 384, 4, 2, 64, 512, 512, 1e6f, 1e-6f, true});
  add({"tiny-qwen3moe", "qwen3moe", 128, 2, 384, 4, 2, 32, 512, 512, 1e6f, 1e-6f, false, 8, 2, 64});
  return p;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Seeds depend on the tensor's name, not its position, so that `--layers 4` writes the same
// bytes for blk.0..3 as the full model does.
uint64_t tensor_seed(uint64_t seed, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return splitmix64(seed ^ splitmix64(h));
}

// Approximately standard normal (Irwin-Hall of four 16-bit uniforms): bell-shaped, bounded by
// ±2·√3, one random draw per value, and bit-reproducible on every machine.
float normalish(uint64_t r) {
  const int64_t sum =
      static_cast<int64_t>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
  constexpr float kScale = 1.7320508f / 65536.0f;  // the sum's std is 65536 / √3
  return static_cast<float>(sum - 131070) * kScale;
}

constexpr uint64_t kChunkBytes = 1 << 20;  // unit of parallel work and of seeding

void fill_float_rows(GgmlType type, Init init, Rng& rng, uint64_t n, uint8_t* out) {
  const float mean = init == Init::kNorm ? 1.0f : 0.0f;
  for (uint64_t i = 0; i < n; ++i) {
    const float v = mean + kWeightStd * normalish(rng.next());
    if (type == GgmlType::F32) {
      std::memcpy(out + 4 * i, &v, 4);
    } else {
      const uint16_t h = type == GgmlType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
      std::memcpy(out + 2 * i, &h, 2);
    }
  }
}

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100...,
// in the order of GPT-2's vocab.json (ids 0..255).
std::vector<std::string> gpt2_byte_tokens() {
  std::vector<int> bs, cs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xa1; b <= 0xac; ++b) bs.push_back(b);
  for (int b = 0xae; b <= 0xff; ++b) bs.push_back(b);
  cs = bs;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (std::find(bs.begin(), bs.end(), b) != bs.end()) continue;
    bs.push_back(b);
    cs.push_back(256 + n++);
  }
  std::vector<std::string> out;
  for (int c : cs) {
    std::string s;
    if (c < 0x80) {
      s.push_back(static_cast<char>(c));
    } else {  // two-byte UTF-8 covers everything below U+0800
      s.push_back(static_cast<char>(0xc0 | (c >> 6)));
      s.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    }
    out.push_back(std::move(s));
  }
  return out;
}

// llama.cpp's token types (llama_token_type / gguf.TokenType).
constexpr int32_t kTokenNormal = 1;
constexpr int32_t kTokenControl = 3;
constexpr int32_t kTokenUnused = 5;

std::string pad_token(uint64_t id) {
  return "[PAD" + std::to_string(id) + "]";
}

// Without --vocab: a byte-level BPE vocabulary ("gpt2" model, "default" pre-tokenizer) made of
// GPT-2's 256 byte tokens, then <|endoftext|> (bos = eos = padding) and two chat control tokens,
// then "[PAD<i>]" padding up to the preset's size. It has no merges, so text tokenizes to one
// token per byte: enough to run and benchmark any preset without a tokenizer download. The
// merges key is written empty because llama.cpp refuses a gpt2 vocabulary without one.
void add_generated_vocab(const Preset& p, std::vector<std::pair<std::string, gguf::Value>>* kv) {
  std::vector<std::string> tokens = gpt2_byte_tokens();
  std::vector<int32_t> types(tokens.size(), kTokenNormal);
  const int32_t eos = static_cast<int32_t>(tokens.size());
  for (const char* t : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    tokens.push_back(t);
    types.push_back(kTokenControl);
  }
  if (tokens.size() > p.vocab)
    fail("vocabulary size ", p.vocab, " is too small for the generated byte-level vocabulary (",
         tokens.size(), " tokens)");
  for (uint64_t i = tokens.size(); i < p.vocab; ++i) {
    tokens.push_back(pad_token(i));
    types.push_back(kTokenUnused);
  }
  kv->emplace_back("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  kv->emplace_back("tokenizer.ggml.pre", gguf::Value::string("default"));
  kv->emplace_back("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
  kv->emplace_back("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  kv->emplace_back("tokenizer.ggml.merges", gguf::Value::array(gguf::ValueType::STRING, {}));
  kv->emplace_back("tokenizer.ggml.bos_token_id", gguf::Value::u32(eos));
  kv->emplace_back("tokenizer.ggml.eos_token_id", gguf::Value::u32(eos));
  kv->emplace_back("tokenizer.ggml.padding_token_id", gguf::Value::u32(eos));
  // Llama-3 prepends BOS, Qwen does not: follow the architecture's real tokenizer.
  kv->emplace_back("tokenizer.ggml.add_bos_token", gguf::Value::boolean(p.arch == "llama"));
}

// Copies every tokenizer.* key of a vocabulary GGUF and pads the per-token arrays to the
// preset's vocabulary size as convert_hf_to_gguf.py does: "[PAD<i>]", type UNUSED, score 0.
void add_file_vocab(const Preset& p, const std::string& path,
                    std::vector<std::pair<std::string, gguf::Value>>* kv) {
  const gguf::File vocab = gguf::File::open(path);
  const gguf::Value* tokens = vocab.find("tokenizer.ggml.tokens");
  if (!tokens || tokens->type != gguf::ValueType::ARRAY)
    fail("vocabulary file '", path, "' has no tokenizer.ggml.tokens array");
  const uint64_t n = std::get<gguf::Array>(tokens->data).items.size();
  if (n > p.vocab)
    fail("vocabulary file '", path, "' has ", n, " tokens, more than the ", p.vocab, " of preset ",
         p.name, " (raise it with --vocab-size)");
  for (const auto& [key, value] : vocab.metadata()) {
    if (!key.starts_with("tokenizer.")) continue;
    gguf::Value v = value;
    const bool per_token = key == "tokenizer.ggml.tokens" || key == "tokenizer.ggml.token_type" ||
                           key == "tokenizer.ggml.scores";
    if (per_token) {
      if (v.type != gguf::ValueType::ARRAY) fail("'", key, "' in '", path, "' is not an array");
      gguf::Array& a = std::get<gguf::Array>(v.data);
      if (a.items.size() != n)
        fail("'", key, "' in '", path, "' has ", a.items.size(), " entries but there are ", n,
             " tokens");
      for (uint64_t i = n; i < p.vocab; ++i) {
        if (key == "tokenizer.ggml.tokens") {
          a.items.push_back(gguf::Value::string(pad_token(i)));
        } else if (key == "tokenizer.ggml.scores") {
          a.items.push_back(a.elem_type == gguf::ValueType::F64 ? gguf::Value::f64(0.0)
                                                                : gguf::Value::f32(0.0f));
        } else {
          gguf::Value t = gguf::Value::i32(kTokenUnused);
          t.type = a.elem_type;  // keep the file's integer type (i32 in every converter)
          if (a.elem_type == gguf::ValueType::U8 || a.elem_type == gguf::ValueType::U16 ||
              a.elem_type == gguf::ValueType::U32 || a.elem_type == gguf::ValueType::U64)
            t.data = uint64_t{kTokenUnused};
          a.items.push_back(std::move(t));
        }
      }
    }
    kv->emplace_back(key, std::move(v));
  }
}

void add_metadata(const Plan& plan, const Options& o, uint32_t file_type,
                  std::vector<std::pair<std::string, gguf::Value>>* kv) {
  using gguf::Value;
  const Preset& p = plan.preset;
  const std::string a = p.arch + ".";
  kv->emplace_back("general.architecture", Value::string(p.arch));
  kv->emplace_back("general.name", Value::string("synthetic " + p.name));
  kv->emplace_back("general.description",
                   Value::string(std::string(kRandomWeightsNotice) + "; xtile synth --preset " +
                                 p.name + " --seed " + std::to_string(o.seed)));
  kv->emplace_back("general.file_type", Value::u32(file_type));
  if (has_random_blocks(plan.type)) kv->emplace_back("general.quantization_version", Value::u32(2));
  if (plan.alignment != 32) kv->emplace_back("general.alignment", Value::u32(plan.alignment));
  kv->emplace_back(a + "context_length", Value::u32(p.context));
  kv->emplace_back(a + "embedding_length", Value::u32(p.hidden));
  kv->emplace_back(a + "block_count", Value::u32(p.layers));
  kv->emplace_back(a + "feed_forward_length", Value::u32(p.ffn));
  kv->emplace_back(a + "attention.head_count", Value::u32(p.n_head));
  kv->emplace_back(a + "attention.head_count_kv", Value::u32(p.n_head_kv));
  kv->emplace_back(a + "attention.key_length", Value::u32(p.head_dim));
  kv->emplace_back(a + "attention.value_length", Value::u32(p.head_dim));
  kv->emplace_back(a + "attention.layer_norm_rms_epsilon", Value::f32(p.rms_eps));
  kv->emplace_back(a + "rope.freq_base", Value::f32(p.rope_base));
  // LlamaModel.set_gguf_parameters writes the rotary dimension; the Qwen converters do not.
  if (p.arch == "llama") kv->emplace_back(a + "rope.dimension_count", Value::u32(p.head_dim));
  if (p.arch == "qwen3moe") {
    kv->emplace_back(a + "expert_count", Value::u32(p.n_expert));
    kv->emplace_back(a + "expert_used_count", Value::u32(p.n_expert_used));
    kv->emplace_back(a + "expert_feed_forward_length", Value::u32(p.expert_ffn));
  }
  kv->emplace_back(a + "vocab_size", Value::u32(p.vocab));
  if (o.vocab_path.empty()) {
    add_generated_vocab(p, kv);
  } else {
    add_file_vocab(p, o.vocab_path, kv);
  }
}

void add_tensors(const Plan& plan, std::vector<TensorSpec>* t) {
  const Preset& p = plan.preset;
  const GgmlType w = plan.type;
  const uint64_t h = p.hidden, q = uint64_t{p.n_head} * p.head_dim,
                 kv = uint64_t{p.n_head_kv} * p.head_dim;
  auto add = [t](std::string name, GgmlType type, std::vector<uint64_t> ne, Init init) {
    t->push_back({std::move(name), type, std::move(ne), init});
  };
  add("token_embd.weight", w, {h, p.vocab}, Init::kWeight);
  for (uint32_t l = 0; l < p.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", GgmlType::F32, {h}, Init::kNorm);
    add(b + "attn_q.weight", w, {h, q}, Init::kWeight);
    if (p.arch == "qwen2") add(b + "attn_q.bias", GgmlType::F32, {q}, Init::kBias);
    add(b + "attn_k.weight", w, {h, kv}, Init::kWeight);
    if (p.arch == "qwen2") add(b + "attn_k.bias", GgmlType::F32, {kv}, Init::kBias);
    add(b + "attn_v.weight", w, {h, kv}, Init::kWeight);
    if (p.arch == "qwen2") add(b + "attn_v.bias", GgmlType::F32, {kv}, Init::kBias);
    add(b + "attn_output.weight", w, {q, h}, Init::kWeight);
    if (p.arch == "qwen3" || p.arch == "qwen3moe") {
      add(b + "attn_q_norm.weight", GgmlType::F32, {p.head_dim}, Init::kNorm);
      add(b + "attn_k_norm.weight", GgmlType::F32, {p.head_dim}, Init::kNorm);
    }
    add(b + "ffn_norm.weight", GgmlType::F32, {h}, Init::kNorm);
    if (p.arch == "qwen3moe") {
      const uint64_t e = p.n_expert, f = p.expert_ffn;
      add(b + "ffn_gate_inp.weight", GgmlType::F32, {h, e}, Init::kWeight);
      add(b + "ffn_gate_exps.weight", w, {h, f, e}, Init::kWeight);
      add(b + "ffn_up_exps.weight", w, {h, f, e}, Init::kWeight);
      add(b + "ffn_down_exps.weight", w, {f, h, e}, Init::kWeight);
    } else {
      add(b + "ffn_gate.weight", w, {h, p.ffn}, Init::kWeight);
      add(b + "ffn_up.weight", w, {h, p.ffn}, Init::kWeight);
      add(b + "ffn_down.weight", w, {p.ffn, h}, Init::kWeight);
    }
  }
  add("output_norm.weight", GgmlType::F32, {h}, Init::kNorm);
  if (!p.tied) add("output.weight", w, {h, p.vocab}, Init::kWeight);
}

// The per-tensor types of `ftype` (model/ftype.h), as llama-quantize would choose them for a model
// of this shape whose weights are `plan.type` and everything else F32.
void apply_ftype(const Ftype& ftype, bool pure, const Preset& p, std::vector<TensorSpec>* t) {
  ModelShape shape;
  shape.arch = p.arch;
  shape.n_layer = p.layers;
  shape.n_head = p.n_head;
  shape.n_head_kv = p.n_head_kv;
  shape.n_expert = p.n_expert;
  std::vector<TensorDesc> descs;
  for (const TensorSpec& s : *t)
    descs.push_back({s.name, static_cast<uint32_t>(s.ne.size()), s.ne[0], s.type});
  TypeRuleOptions options;
  options.pure = pure;
  const std::vector<GgmlType> types = choose_types(ftype, shape, descs, options);
  for (size_t i = 0; i < t->size(); ++i) (*t)[i].type = types[i];
}

}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = make_presets();
  return p;
}

std::string preset_names() {
  std::string s;
  for (const Preset& p : presets()) s += (s.empty() ? "" : ", ") + p.name;
  return s;
}

const Preset& find_preset(std::string_view name) {
  for (const Preset& p : presets())
    if (p.name == name) return p;
  fail("unknown preset '", name, "'; presets: ", preset_names());
}

bool supported_type(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || has_random_blocks(t);
}

uint32_t file_type_for(GgmlType t) {
  const Ftype* f = supported_type(t) ? ftype_for_type(t) : nullptr;
  if (!f) fail("synth cannot write tensor type ", ggml_type_name(t));
  return f->file_type;
}

uint64_t TensorSpec::elements() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  return n;
}

uint64_t TensorSpec::bytes() const {
  return ggml_row_bytes(type, ne[0]) * (elements() / ne[0]);
}

uint64_t Plan::parameters() const {
  uint64_t n = 0;
  for (const TensorSpec& t : tensors) n += t.elements();
  return n;
}

uint64_t Plan::tensor_bytes() const {
  uint64_t n = 0;
  for (const TensorSpec& t : tensors) n += t.bytes();
  return n;
}

Plan make_plan(const Options& o) {
  Plan plan;
  plan.preset = find_preset(o.preset);
  plan.seed = o.seed;
  plan.alignment = o.alignment;
  Preset& p = plan.preset;
  // Either a named file type with its recipe, or one type for every weight (a pure file).
  const bool named = !o.ftype.empty();
  const Ftype* ftype = named ? &ftype_by_name(o.ftype) : nullptr;
  if (!named) {
    if (!supported_type(o.type))
      fail("synth cannot write tensor type ", ggml_type_name(o.type), "; types: ", ftype_names());
    ftype = ftype_for_type(o.type);
  }
  const bool pure = !named || o.pure;
  plan.type = ftype->base;
  plan.ftype = named ? std::string(ftype->name) + (o.pure ? " pure" : "")
                     : std::string(ggml_type_name(o.type)) + " pure";
  if (o.layers > p.layers)
    fail("--layers ", o.layers, " is more than the ", p.layers, " layers of preset ", p.name);
  if (o.layers > 0) p.layers = o.layers;
  if (o.vocab_size > 0) p.vocab = o.vocab_size;
  if (o.alignment < 8 || o.alignment > (1u << 20) || !std::has_single_bit(o.alignment))
    fail("alignment ", o.alignment, " must be a power of two between 8 and 1048576");
  add_metadata(plan, o, ftype->file_type, &plan.metadata);
  add_tensors(plan, &plan.tensors);
  apply_ftype(*ftype, pure, p, &plan.tensors);
  for (const TensorSpec& t : plan.tensors) {
    if (t.ne[0] % ggml_traits(t.type).block_size != 0)
      fail("tensor '", t.name, "' has rows of ", t.ne[0], " elements, not a multiple of the ",
           ggml_traits(t.type).block_size, " of ", ggml_type_name(t.type));
  }
  return plan;
}

void fill_tensor(const TensorSpec& spec, uint64_t seed, std::span<uint8_t> dst, ThreadPool* pool,
                 const std::function<void(uint64_t)>& on_chunk) {
  const uint64_t total = spec.bytes();
  if (dst.size() != total)
    fail("tensor '", spec.name, "' needs ", total, " bytes, the writer gave ", dst.size());
  const bool quantized = has_random_blocks(spec.type);
  if (quantized && spec.init != Init::kWeight)
    fail("tensor '", spec.name, "': only weight matrices are generated quantized");
  const uint64_t row_bytes = ggml_row_bytes(spec.type, spec.ne[0]);
  const uint64_t rows = spec.elements() / spec.ne[0];
  const uint64_t chunk_rows = std::max<uint64_t>(1, kChunkBytes / row_bytes);
  const int64_t n_chunks = static_cast<int64_t>((rows + chunk_rows - 1) / chunk_rows);
  const uint64_t base_seed = tensor_seed(seed, spec.name);

  std::atomic<uint64_t> done{0};
  uint64_t reported = 0;  // touched only by the calling thread (worker 0)
  auto work = [&](int64_t c_begin, int64_t c_end, int thread) {
    for (int64_t c = c_begin; c < c_end; ++c) {
      const uint64_t r0 = static_cast<uint64_t>(c) * chunk_rows;
      const uint64_t nr = std::min(chunk_rows, rows - r0);
      Rng rng{splitmix64(base_seed + static_cast<uint64_t>(c))};
      uint8_t* out = dst.data() + r0 * row_bytes;
      const uint64_t n = nr * spec.ne[0];
      if (quantized) {
        fill_random_blocks(spec.type, rng, n / ggml_traits(spec.type).block_size, out);
      } else {
        fill_float_rows(spec.type, spec.init, rng, n, out);
      }
      const uint64_t now = done.fetch_add(nr * row_bytes) + nr * row_bytes;
      if (thread == 0 && on_chunk && now > reported) {
        on_chunk(now - reported);
        reported = now;
      }
    }
  };
  if (pool && pool->size() > 1 && n_chunks > 1) {
    pool->parallel_for(0, n_chunks, 1, work);
  } else {
    work(0, n_chunks, 0);
  }
  if (on_chunk && total > reported) on_chunk(total - reported);
}

gguf::Writer make_writer(const Plan& plan, ThreadPool* pool, Progress progress) {
  gguf::Writer w;
  for (const auto& [key, value] : plan.metadata) {
    if (key == "general.alignment") {
      w.set_alignment(plan.alignment);
    } else {
      w.set(key, value);
    }
  }
  auto done = std::make_shared<uint64_t>(0);
  const uint64_t total = plan.tensor_bytes();
  for (const TensorSpec& spec : plan.tensors) {
    w.add_tensor(spec.name, spec.type, spec.ne,
                 [spec, seed = plan.seed, pool, progress, done, total](std::span<uint8_t> dst) {
                   auto step = [&](uint64_t bytes) {
                     *done += bytes;
                     if (progress) progress(*done, total, spec.name);
                   };
                   fill_tensor(spec, seed, dst, pool, step);
                 });
  }
  return w;
}

void write_model(const Options& options, const std::string& path, Progress progress) {
  const Plan plan = make_plan(options);
  ThreadPool pool(std::max(1, options.threads));
  make_writer(plan, &pool, std::move(progress)).write(path);
}

}  // namespace xtile::synth
