#include "model/weights.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "base/error.h"
#include "quant/weight_terms.h"
#include "kernels/pack/pack.h"
#include "model/embedding.h"
#include "quant/quant.h"

namespace xtile {

namespace {

std::atomic<uint64_t> g_repacks{0};

bool is_quantized(GgmlType t) {
  return is_quantized_weight(t);
}
bool is_float(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

// Arena offsets are 64-byte aligned: a cache line, and the row size AMX tile loads want.
size_t align64(size_t n) {
  return (n + 63) / 64 * 64;
}

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

uint64_t repack_count() {
  return g_repacks.load();
}

std::string LoadStats::summary() const {
  std::string s = "repacked " + std::to_string(repacks) + " tensors";
  for (size_t i = 0; i < packed.size(); ++i) {
    const Packing& p = packed[i];
    s += std::string(i == 0 ? ": " : ", ") + std::to_string(p.tensors) + " " +
         std::string(ggml_type_name(p.type)) + " -> " + std::string(layout_name(p.layout)) + " (" +
         mib(p.bytes) + ")";
  }
  if (fused_matrices) s += "; " + std::to_string(fused_matrices) + " fused matrices";
  if (float_tensors) {
    s += "; float path: " + std::to_string(float_tensors) + " matrices (" + mib(float_bytes) +
         " f32";
    if (converted_tensors) s += ", " + std::to_string(converted_tensors) + " converted at load";
    s += ")";
  }
  char secs[32];
  std::snprintf(secs, sizeof(secs), "; %.2f s", seconds);
  return s + secs;
}

// Builds a WeightStore: plans every projection (validating names, shapes and types), sizes the
// arenas, then packs/converts tensor by tensor.
class WeightLoader {
 public:
  // plan_only: stop after planning (WeightStore::check_plan).
  WeightLoader(WeightStore& store, ThreadPool& pool, const LoadOptions& options,
               bool plan_only = false)
      : s_(store), pool_(pool), options_(options), plan_only_(plan_only) {}

  void run();

 private:
  // A run of parts that becomes one Matrix (several parts only when fused).
  struct Segment {
    std::vector<const gguf::TensorInfo*> tensors;
    GgmlType type = GgmlType::F32;
    bool packed = false;
    Layout layout = Layout::q8_0_rows;
    int64_t n = 0;
    size_t offset = 0;  // in the packed or float arena
    size_t bytes = 0;
  };
  struct Plan {
    std::vector<Segment> segments;
    Projection* dst = nullptr;
    int64_t k = 0;
  };

  template <typename... Parts>
  [[noreturn]] void fail_here(Parts&&... parts) const {
    fail(s_.file_->path(), ": ", std::forward<Parts>(parts)...);
  }
  const gguf::TensorInfo& matrix_tensor(const std::string& name, int64_t k, int64_t n) const;
  const float* vector(const std::string& name, int64_t n, bool required);
  const KernelSet& kernel_set(GgmlType type);
  void plan(std::vector<const gguf::TensorInfo*> parts, int64_t k, Projection* dst);
  void build(const Plan& p);
  void build_packed(const Segment& seg, int64_t k, Matrix* m);
  void build_float(const Segment& seg, int64_t k, Matrix* m);
  void release(const gguf::TensorInfo& t);
  void tensor_done(const gguf::TensorInfo& t);
  void moe_tensor_done(const MoeTensorEvent& ev);

  WeightStore& s_;
  ThreadPool& pool_;
  const LoadOptions& options_;
  bool plan_only_;
  std::vector<Plan> plans_;
  size_t packed_bytes_ = 0;
  size_t float_bytes_ = 0;
  uint64_t total_bytes_ = 0;
  uint64_t done_bytes_ = 0;
};

const gguf::TensorInfo& WeightLoader::matrix_tensor(const std::string& name, int64_t k,
                                                    int64_t n) const {
  const gguf::TensorInfo* t = s_.file_->find_tensor(name);
  if (!t) fail_here("missing tensor '", name, "'");
  if (t->n_dims != 2 || static_cast<int64_t>(t->ne[0]) != k || static_cast<int64_t>(t->ne[1]) != n)
    fail_here("tensor '", name, "' has shape ", t->shape_string(), ", expected [", k, ", ", n, "]");
  if (!is_quantized(t->type) && !is_float(t->type))
    fail_here("tensor '", name, "' has type ", ggml_type_name(t->type),
              "; xtile runs f32, f16, bf16, ", quantized_weight_names(), " weights");
  return *t;
}

const float* WeightLoader::vector(const std::string& name, int64_t n, bool required) {
  const gguf::TensorInfo* t = s_.file_->find_tensor(name);
  if (!t) {
    if (required) fail_here("missing tensor '", name, "'");
    return nullptr;
  }
  if (t->n_dims != 1 || static_cast<int64_t>(t->ne[0]) != n)
    fail_here("tensor '", name, "' has shape ", t->shape_string(), ", expected [", n, "]");
  if (t->type == GgmlType::F32) return reinterpret_cast<const float*>(t->data);
  if (!is_float(t->type))
    fail_here("tensor '", name, "' has type ", ggml_type_name(t->type),
              "; norms and biases must be f32, f16 or bf16");
  std::vector<float>& v = s_.converted_vectors_.emplace_back(static_cast<size_t>(n));
  dequantize_gguf_row(t->type, t->data, n, 0, v.data());
  return v.data();
}

const KernelSet& WeightLoader::kernel_set(GgmlType type) {
  for (const KernelSet& k : s_.kernel_sets_)
    if (k.type == type) return k;
  KernelSet k = select_kernels(s_.tier_, type);
  if (k.gemv->layout != k.gemm->layout)
    fail("tier ", tier_name(s_.tier_), ": kernels ", k.gemv->name, " and ", k.gemm->name,
         " read different layouts");
  s_.kernel_sets_.push_back(k);
  return s_.kernel_sets_.back();
}

void WeightLoader::plan(std::vector<const gguf::TensorInfo*> parts, int64_t k, Projection* dst) {
  Plan p;
  p.dst = dst;
  p.k = k;
  for (const gguf::TensorInfo* t : parts) {
    const int64_t n = static_cast<int64_t>(t->ne[1]);
    total_bytes_ += t->bytes;
    dst->n += n;
    if (is_quantized(t->type) && !options_.dequantize) {
      const Layout layout = kernel_set(t->type).layout;
      // Join the previous segment when it is packed the same way and ends on a group boundary,
      // so this part's first row starts a new group of the layout.
      Segment* last = p.segments.empty() ? nullptr : &p.segments.back();
      if (options_.fuse && last && last->packed && last->type == t->type &&
          last->n % layout_row_step(layout) == 0) {
        last->tensors.push_back(t);
        last->n += n;
        continue;
      }
      p.segments.push_back({{t}, t->type, true, layout, n});
    } else {
      p.segments.push_back({{t}, t->type, false, Layout::q8_0_rows, n});
    }
  }
  dst->k = k;
  for (Segment& seg : p.segments) {
    if (seg.packed) {
      seg.bytes = packed_bytes(seg.layout, seg.n, k);
      seg.offset = packed_bytes_;
      packed_bytes_ += align64(seg.bytes);
    } else if (seg.type != GgmlType::F32) {
      seg.bytes = static_cast<size_t>(seg.n * k) * sizeof(float);
      seg.offset = float_bytes_;
      float_bytes_ += align64(seg.bytes);
    }
  }
  plans_.push_back(std::move(p));
}

void WeightLoader::release(const gguf::TensorInfo& t) {
  MappedFile* mapping = s_.file_->mapping();
  if (mapping) mapping->release(s_.file_->data_offset() + t.offset, t.bytes);
}

void WeightLoader::tensor_done(const gguf::TensorInfo& t) {
  done_bytes_ += t.bytes;
  if (options_.progress) options_.progress(done_bytes_, total_bytes_, t.name);
}

void WeightLoader::moe_tensor_done(const MoeTensorEvent& ev) {
  if (ev.packed) {
    g_repacks.fetch_add(1);
    ++s_.stats_.repacks;
    LoadStats::Packing* stat = nullptr;
    for (LoadStats::Packing& p : s_.stats_.packed)
      if (p.type == ev.tensor->type && p.layout == ev.layout) stat = &p;
    if (!stat)
      stat = &s_.stats_.packed.emplace_back(LoadStats::Packing{ev.tensor->type, ev.layout});
    ++stat->tensors;
    stat->bytes += ev.bytes;
  } else {
    ++s_.stats_.float_tensors;
    s_.stats_.float_bytes += ev.bytes;
    if (ev.converted) ++s_.stats_.converted_tensors;
  }
  tensor_done(*ev.tensor);
}

void WeightLoader::build_packed(const Segment& seg, int64_t k, Matrix* m) {
  uint8_t* base = s_.packed_arena_.data() + seg.offset;
  int64_t row0 = 0;
  for (const gguf::TensorInfo* t : seg.tensors) {
    const int64_t n = static_cast<int64_t>(t->ne[1]);
    // row0 is a multiple of the layout's row step (see plan), so this part's rows start at
    // the byte offset of a whole matrix of row0 rows.
    uint8_t* dst = base + packed_bytes(seg.layout, row0, k);
    pool_.parallel_for(0, n, layout_row_step(seg.layout), [&](int64_t r0, int64_t r1, int) {
      pack_rows(seg.layout, t->data, n, k, dst, r0, r1);
    });
    g_repacks.fetch_add(1);
    ++s_.stats_.repacks;
    release(*t);
    tensor_done(*t);
    row0 += n;
  }
  m->packed = true;
  m->pm = PackedMatrix{seg.type, seg.layout, seg.n, k, base, seg.bytes};
  LoadStats::Packing* stat = nullptr;
  for (LoadStats::Packing& p : s_.stats_.packed)
    if (p.type == seg.type && p.layout == seg.layout) stat = &p;
  if (!stat) stat = &s_.stats_.packed.emplace_back(LoadStats::Packing{seg.type, seg.layout});
  stat->tensors += static_cast<int>(seg.tensors.size());
  stat->bytes += seg.bytes;
  if (seg.tensors.size() > 1) ++s_.stats_.fused_matrices;
}

void WeightLoader::build_float(const Segment& seg, int64_t k, Matrix* m) {
  const gguf::TensorInfo& t = *seg.tensors[0];
  if (t.type == GgmlType::F32) {
    m->f32 = reinterpret_cast<const float*>(t.data);
  } else {
    float* dst = reinterpret_cast<float*>(s_.float_arena_.data() + seg.offset);
    pool_.parallel_for(0, seg.n, 1, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) dequantize_gguf_row(t.type, t.data, k, r, dst + r * k);
    });
    m->f32 = dst;
    release(t);
    ++s_.stats_.converted_tensors;
  }
  ++s_.stats_.float_tensors;
  s_.stats_.float_bytes += static_cast<uint64_t>(seg.n * k) * sizeof(float);
  tensor_done(t);
}

void WeightLoader::build(const Plan& p) {
  for (const Segment& seg : p.segments) {
    Matrix m;
    for (const gguf::TensorInfo* t : seg.tensors) m.name += (m.name.empty() ? "" : "+") + t->name;
    m.source_type = seg.type;
    m.n = seg.n;
    m.k = p.k;
    if (seg.packed)
      build_packed(seg, p.k, &m);
    else
      build_float(seg, p.k, &m);
    p.dst->parts.push_back(std::move(m));
  }
}

void WeightLoader::run() {
  const ModelConfig& c = s_.config_;
  const int64_t e = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.n_ff;
  const gguf::TensorInfo& embd = matrix_tensor("token_embd.weight", e, c.n_vocab);
  s_.layers_.resize(static_cast<size_t>(c.n_layer));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    LayerWeights& lw = s_.layers_[static_cast<size_t>(l)];
    const std::string b = "blk." + std::to_string(l) + ".";
    lw.attn_norm = vector(b + "attn_norm.weight", e, true);
    lw.ffn_norm = vector(b + "ffn_norm.weight", e, true);
    if (c.qkv_bias) {
      lw.q_bias = vector(b + "attn_q.bias", qd, true);
      lw.k_bias = vector(b + "attn_k.bias", kvd, true);
      lw.v_bias = vector(b + "attn_v.bias", kvd, true);
    }
    if (c.qk_norm) {
      lw.q_norm = vector(b + "attn_q_norm.weight", c.head_dim, true);
      lw.k_norm = vector(b + "attn_k_norm.weight", c.head_dim, true);
    }
    plan({&matrix_tensor(b + "attn_q.weight", e, qd), &matrix_tensor(b + "attn_k.weight", e, kvd),
          &matrix_tensor(b + "attn_v.weight", e, kvd)},
         e, &lw.qkv);
    plan({&matrix_tensor(b + "attn_output.weight", qd, e)}, qd, &lw.out);
    if (c.n_expert > 0) continue;  // the experts are MoeWeights' (below)
    plan({&matrix_tensor(b + "ffn_gate.weight", e, ff), &matrix_tensor(b + "ffn_up.weight", e, ff)},
         e, &lw.gate_up);
    plan({&matrix_tensor(b + "ffn_down.weight", ff, e)}, ff, &lw.down);
  }
  if (c.n_expert > 0) {
    s_.moe_ = std::make_unique<MoeWeights>(
        *s_.file_, MoeShape{e, c.n_expert, c.n_expert_used, c.n_ff_exp}, c.n_layer,
        [this](GgmlType type) { return kernel_set(type); }, options_.dequantize);
    total_bytes_ += s_.moe_->source_bytes();
  }
  s_.output_norm_ = vector("output_norm.weight", e, true);
  s_.rope_freqs_ = vector("rope_freqs.weight", c.n_rot / 2, false);
  plan({c.tied_output ? &embd : &matrix_tensor("output.weight", e, c.n_vocab)}, e, &s_.output_);

  if (!s_.kernel_sets_.empty()) {
    s_.quantize_fn_ = s_.kernel_sets_[0].quantize;
    s_.quantize_name_ = s_.kernel_sets_[0].quantize_name;
  }
  if (plan_only_) return;
  s_.packed_arena_ = AlignedBuffer(packed_bytes_);
  s_.float_arena_ = AlignedBuffer(float_bytes_);
  if (options_.progress) options_.progress(0, total_bytes_, "");
  for (const Plan& p : plans_) build(p);
  if (s_.moe_) {
    s_.moe_->build(pool_, [this](const MoeTensorEvent& ev) { moe_tensor_done(ev); });
    for (int64_t l = 0; l < c.n_layer; ++l)
      s_.layers_[static_cast<size_t>(l)].moe = &s_.moe_->layer(l);
  }

  if (c.tied_output) {
    const Matrix& out = s_.output_.parts[0];
    if (out.packed)
      s_.embd_packed_ = &out;
    else
      s_.embd_f32_ = out.f32;
  } else {
    // Not a matmul weight: rows are dequantized from the mapping as tokens need them.
    s_.embd_rows_ = embd.data;
    s_.embd_type_ = embd.type;
  }
}

std::unique_ptr<WeightStore> WeightStore::load(const std::string& path, ThreadPool& pool,
                                               const LoadOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<WeightStore> s(new WeightStore());
  s->file_ = std::make_unique<gguf::File>(gguf::File::open(path));
  try {
    s->config_ = read_model_config(*s->file_);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  s->tier_ = options.tier;
  WeightLoader(*s, pool, options).run();
  s->stats_.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

void WeightStore::check_plan(std::unique_ptr<gguf::File> file, Tier tier) {
  std::unique_ptr<WeightStore> s(new WeightStore());
  s->file_ = std::move(file);
  try {
    s->config_ = read_model_config(*s->file_);
  } catch (const Error& e) {
    fail(s->file_->path(), ": ", e.what());
  }
  s->tier_ = tier;
  ThreadPool pool(1);  // nothing is packed
  LoadOptions options;
  options.tier = tier;
  WeightLoader(*s, pool, options, /*plan_only=*/true).run();
}

const KernelSet& WeightStore::kernels(GgmlType type) const {
  for (const KernelSet& k : kernel_sets_)
    if (k.type == type) return k;
  fail("no kernels were selected for weight type ", ggml_type_name(type));
}

std::vector<std::string> WeightStore::kernel_names() const {
  std::vector<std::string> names;
  for (const KernelSet& k : kernel_sets_) {
    names.emplace_back(k.gemv->name);
    if (k.gemm != k.gemv) names.emplace_back(k.gemm->name);
  }
  if (quantize_fn_) names.emplace_back(quantize_name_);
  return names;
}

void WeightStore::embed(int32_t token, float* out) const {
  if (token < 0 || token >= config_.n_vocab)
    fail("token id ", token, " is out of range (the vocabulary has ", config_.n_vocab, " tokens)");
  if (embd_packed_) {
    dequantize_packed_row(embd_packed_->pm, token, out);
  } else if (embd_f32_) {
    std::memcpy(out, embd_f32_ + static_cast<int64_t>(token) * config_.n_embd,
                static_cast<size_t>(config_.n_embd) * sizeof(float));
  } else {
    dequantize_gguf_row(embd_type_, embd_rows_, config_.n_embd, token, out);
  }
}

}  // namespace xtile
