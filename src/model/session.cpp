#include "model/session.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "base/error.h"
#include "base/float_env.h"
#include "ops/attention.h"
#include "ops/matmul.h"
#include "ops/matmul_float.h"
#include "ops/ops.h"
#include "ops/tier_self_check.h"

namespace xtile {

namespace {

int64_t resolve_ctx(const ModelConfig& c, const SessionOptions& o) {
  // Negative, 0 in a model without a context length, or beyond any memory (the model's own
  // length may be hostile too): an error naming it.
  return KvCache::checked_positions(o.n_ctx == 0 ? c.n_ctx_train : o.n_ctx);
}

size_t sz(int64_t n) {
  return static_cast<size_t>(n);
}

}  // namespace

Session::Session(const WeightStore& weights, ThreadPool& pool, const SessionOptions& options)
    : weights_(weights),
      c_(weights.config()),
      pool_(pool),
      n_batch_(options.n_batch),
      n_ctx_(resolve_ctx(weights.config(), options)),
      kv_budget_(options.kv_budget > 0 ? options.kv_budget : n_ctx_ * options.n_seq_max),
      kv_type_k_(options.kv_type),
      kv_type_v_(options.kv_type_v.value_or(options.kv_type)) {
  if (n_batch_ < 1) fail("the batch size must be at least 1, got ", n_batch_);
  if (options.n_seq_max < 1) fail("the number of sequences must be at least 1");
  // The kernels this build runs must give ref's bits; checked once per process and tier.
  self_check_tier_once(pool, weights.tier());
  n_batch_ = std::min(n_batch_, options.n_seq_max == 1 ? n_ctx_ : kv_budget_);
  kv_.resize(sz(options.n_seq_max));
  n_past_.assign(sz(options.n_seq_max), 0);
  inv_freq_.resize(sz(c_.n_rot / 2));
  ops::rope_inv_freq(c_.rope_base, c_.n_rot, weights.rope_freqs(), c_.rope_scale_factor,
                     inv_freq_.data());
  const int64_t b = n_batch_;
  x_.resize(sz(b * c_.n_embd));
  h_.resize(sz(b * c_.n_embd));
  qkv_.resize(sz(b * (c_.q_dim() + 2 * c_.kv_dim())));
  att_.resize(sz(b * c_.q_dim()));
  if (weights.moe()) {
    moe_ = std::make_unique<MoeFfn>(weights.moe()->shape(), b);
  } else {
    gate_up_.resize(sz(b * 2 * c_.n_ff));
    ffn_h_.resize(sz(b * c_.n_ff));
  }
  ffn_out_.resize(sz(b * c_.n_embd));
  pos_.resize(sz(b));
  seq_.resize(sz(b));
  rope_scratch_.resize(sz(pool.size() * c_.n_rot));
  // Kernels chosen as the avx2 tier (`--kernels avx2`) run attention's 8-wide objects too, also
  // on a CPU with AVX-512, so that the tier measures what an AVX2-only CPU runs (every width
  // gives the same bits).
  if (weights.tier() == Tier::avx2) attention_path_ = ops::AttentionPath::lanes_isa_w8;
  // One sequence: its whole cache now, pages touched (as llama.cpp clears its KV buffer), so the
  // first tokens do not pay the page faults. Several: each allocates as it grows.
  if (options.n_seq_max == 1) {
    reserve(0, n_ctx_);
    kv_[0]->prefault(pool);
  }
}

void Session::reserve(int seq, int64_t n) {
  std::unique_ptr<KvCache>& kv = kv_[sz(seq)];
  if (kv && kv->n_ctx() >= n) return;
  // Doubling from kFirstKvPositions, up to n_ctx: a growing sequence copies O(its length) in all.
  int64_t cap = kv ? kv->n_ctx() : std::min<int64_t>(kFirstKvPositions, n_ctx_);
  while (cap < n) cap = cap > n_ctx_ / 2 ? n_ctx_ : 2 * cap;
  auto grown = std::make_unique<KvCache>(c_.n_layer, cap, c_.n_head_kv, c_.head_dim, kv_type_k_,
                                         kv_type_v_);
  if (kv && n_past_[sz(seq)] > 0) grown->copy_from(*kv, n_past_[sz(seq)]);
  kv = std::move(grown);
}

void Session::truncate(int seq, int64_t n) {
  if (seq < 0 || seq >= n_seq_max()) fail("truncate: sequence ", seq, " does not exist");
  if (n < 0 || n > n_past_[sz(seq)])
    fail("truncate: ", n, " is outside the ", n_past_[sz(seq)], " positions of sequence ", seq);
  n_past_[sz(seq)] = n;
}

void Session::release(int seq) {
  truncate(seq, 0);
  // One sequence keeps its cache, allocated and touched once at construction.
  if (n_seq_max() > 1) kv_[sz(seq)].reset();
}

void Session::clear(int seq) {
  truncate(seq, 0);  // checks seq
  const KvCache* kv = kv_[sz(seq)].get();
  if (kv && kv->n_ctx() > kFirstKvPositions) release(seq);
}

void Session::copy_prefix(int src, int dst, int64_t n) {
  if (src < 0 || src >= n_seq_max() || dst < 0 || dst >= n_seq_max() || src == dst)
    fail("copy_prefix: sequences ", src, " -> ", dst, " are not two of the ", n_seq_max());
  if (n < 1 || n > n_past_[sz(src)])
    fail("copy_prefix: ", n, " positions are not within the ", n_past_[sz(src)], " of sequence ",
         src);
  if (kv_used() - n_past_[sz(dst)] + n > kv_budget_)
    fail("the KV budget is full: ", kv_used() - n_past_[sz(dst)], " positions held + ", n,
         " copied > ", kv_budget_);
  n_past_[sz(dst)] = 0;  // nothing of dst's own is kept when its cache grows
  reserve(dst, n);
  kv_[sz(dst)]->copy_from(*kv_[sz(src)], n);
  n_past_[sz(dst)] = n;
}

int64_t Session::kv_used() const {
  int64_t used = 0;
  for (int64_t n : n_past_) used += n;
  return used;
}

size_t Session::kv_bytes() const {
  size_t bytes = 0;
  for (const auto& kv : kv_)
    if (kv) bytes += kv->bytes();
  return bytes;
}

void Session::eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) fail("eval: no tokens to process");
  std::vector<Row> rows(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) rows[i] = {0, tokens[i], all_logits};
  rows.back().logits = true;
  eval_rows(rows, logits);
}

void Session::eval_rows(std::span<const Row> rows, std::vector<float>* logits,
                        std::vector<float>* hidden) {
  const int64_t n = static_cast<int64_t>(rows.size());
  if (n == 0) fail("eval: no tokens to process");
  // Everything is checked before anything is evaluated.
  std::vector<int64_t> grow(n_past_.size(), 0);
  int64_t n_logits = 0, n_hidden = 0;
  for (const Row& r : rows) {
    if (r.seq < 0 || r.seq >= n_seq_max())
      fail("eval: sequence ", r.seq, " does not exist (", n_seq_max(), " sequences)");
    if (r.token < 0 || r.token >= c_.n_vocab)
      fail("token id ", r.token, " is out of range (the vocabulary has ", c_.n_vocab, " tokens)");
    ++grow[sz(r.seq)];
    n_logits += r.logits ? 1 : 0;
    n_hidden += r.hidden ? 1 : 0;
  }
  if (n_hidden > 0 && hidden == nullptr) fail("eval: rows ask for hidden states, and no output");
  int64_t new_positions = 0;
  for (size_t s = 0; s < grow.size(); ++s) {
    if (n_past_[s] + grow[s] > n_ctx_)
      fail("context is full: ", n_past_[s], " positions used + ", grow[s],
           " new tokens > context size ", n_ctx_);
    new_positions += grow[s];
  }
  if (kv_used() + new_positions > kv_budget_)
    fail("the KV budget is full: ", kv_used(), " positions held + ", new_positions, " new > ",
         kv_budget_);
  for (size_t s = 0; s < grow.size(); ++s)
    if (grow[s] > 0) reserve(static_cast<int>(s), n_past_[s] + grow[s]);
  const int64_t v = c_.n_vocab;
  logits->resize(sz(n_logits * v));
  if (hidden) hidden->resize(sz(n_hidden * c_.n_embd));
  // The contract's rounding and denormal handling on this thread, whatever the host set; the
  // pool's jobs set it on every thread too. The caller's MXCSR comes back on return.
  ContractFloatEnv env;
  std::vector<int32_t> tokens(sz(n_batch_));
  std::vector<int64_t> logit_rows, hidden_rows;
  float* out = logits->data();
  float* hidden_out = hidden ? hidden->data() : nullptr;
  for (int64_t i = 0; i < n; i += n_batch_) {
    const int64_t t = std::min(n_batch_, n - i);
    logit_rows.clear();
    hidden_rows.clear();
    for (int64_t r = 0; r < t; ++r) {
      const Row& row = rows[sz(i + r)];
      tokens[sz(r)] = row.token;
      seq_[sz(r)] = row.seq;
      pos_[sz(r)] = n_past_[sz(row.seq)]++;
      if (row.logits) logit_rows.push_back(r);
      if (row.hidden) hidden_rows.push_back(r);
    }
    forward_batch(tokens.data(), t, logit_rows, hidden_rows, out, hidden_out);
    out += static_cast<int64_t>(logit_rows.size()) * v;
    if (hidden_out) hidden_out += static_cast<int64_t>(hidden_rows.size()) * c_.n_embd;
  }
}

namespace {

// The first packed matrix of p at or after part `from`, else null.
const PackedMatrix* first_packed(const Projection* p, size_t from) {
  if (p == nullptr) return nullptr;
  for (size_t i = from; i < p->parts.size(); ++i)
    if (p->parts[i].packed) return &p->parts[i].pm;
  return nullptr;
}

}  // namespace

const Projection* Session::after_ffn(int64_t layer) const {
  return layer + 1 < c_.n_layer ? &weights_.layer(layer + 1).qkv : &weights_.output();
}

void Session::project(const Projection& p, const float* x, int64_t ldx, int64_t rows, float* y,
                      int64_t ldy, const Projection* then) {
  bool quantized = false;  // the activations are quantized once, for every packed part
  int64_t col = 0;
  for (size_t i = 0; i < p.parts.size(); ++i) {
    const Matrix& m = p.parts[i];
    if (m.packed) {
      if (!quantized) {
        quantize_activations(pool_, weights_.quantize_fn(), x, ldx, rows, p.k, acts_);
        quantized = true;
      }
      const PackedMatrix* next = first_packed(&p, i + 1);
      if (next == nullptr) next = first_packed(then, 0);
      matmul_quantized(pool_, weights_.kernels(m.source_type), m.pm, acts_.acts(), y + col, ldy,
                       next);
    } else {
      matmul_f32(pool_, m.f32, m.n, m.k, x, ldx, rows, y + col, ldy);
    }
    col += m.n;
  }
}

void Session::add_rows(float* x, const float* y, int64_t rows, int64_t n) {
  pool_.parallel_for(0, rows, ops::row_grain(n), [&](int64_t r0, int64_t r1, int) {
    for (int64_t i = r0 * n; i < r1 * n; ++i) x[i] += y[i];
  });
}

void Session::attention_block(int64_t l, int64_t t) {
  const LayerWeights& w = weights_.layer(l);
  const int64_t e = c_.n_embd, hd = c_.head_dim, qd = c_.q_dim(), kvd = c_.kv_dim();
  const int64_t ldqkv = qd + 2 * kvd;
  ops::rmsnorm(pool_, x_.data(), e, w.attn_norm, t, e, c_.rms_eps, h_.data(), e);
  project(w.qkv, h_.data(), e, t, qkv_.data(), ldqkv, &w.out);

  // Per row: biases, per-head norms, RoPE, then the row's K and V into the cache.
  const int64_t row_cost = 4 * (qd + 2 * kvd) + 8 * (c_.n_head + c_.n_head_kv) * hd;
  pool_.parallel_for(0, t, ops::row_grain(row_cost), [&](int64_t r0, int64_t r1, int thread) {
    float* cos_t = rope_scratch_.data() + thread * c_.n_rot;
    float* sin_t = cos_t + c_.n_rot / 2;
    for (int64_t r = r0; r < r1; ++r) {
      float* q = qkv_.data() + r * ldqkv;
      float* k = q + qd;
      float* v = k + kvd;
      if (c_.qkv_bias) {
        for (int64_t i = 0; i < qd; ++i) q[i] += w.q_bias[i];
        for (int64_t i = 0; i < kvd; ++i) k[i] += w.k_bias[i];
        for (int64_t i = 0; i < kvd; ++i) v[i] += w.v_bias[i];
      }
      if (c_.qk_norm) {
        for (int64_t h = 0; h < c_.n_head; ++h)
          ops::rmsnorm_row(q + h * hd, w.q_norm, hd, c_.rms_eps, q + h * hd);
        for (int64_t h = 0; h < c_.n_head_kv; ++h)
          ops::rmsnorm_row(k + h * hd, w.k_norm, hd, c_.rms_eps, k + h * hd);
      }
      ops::rope_cos_sin(pos_[sz(r)], inv_freq_.data(), c_.n_rot, cos_t, sin_t);
      for (int64_t h = 0; h < c_.n_head; ++h)
        ops::rope_head(c_.rope_mode, q + h * hd, c_.n_rot, cos_t, sin_t);
      for (int64_t h = 0; h < c_.n_head_kv; ++h)
        ops::rope_head(c_.rope_mode, k + h * hd, c_.n_rot, cos_t, sin_t);
      kv_[sz(seq_[sz(r)])]->store(l, pos_[sz(r)], k, v);
    }
  });

  ops::AttentionShape shape;
  shape.n_head = c_.n_head;
  shape.n_head_kv = c_.n_head_kv;
  shape.head_dim = hd;
  shape.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Each run of rows of one sequence attends over that sequence's cache.
  for (int64_t r0 = 0; r0 < t;) {
    int64_t r1 = r0 + 1;
    while (r1 < t && seq_[sz(r1)] == seq_[sz(r0)]) ++r1;
    ops::attention(pool_, shape, qkv_.data() + r0 * ldqkv, ldqkv, pos_.data() + r0, r1 - r0,
                   kv_[sz(seq_[sz(r0)])]->view(l), att_.data() + r0 * qd, qd, attention_scratch_,
                   attention_path_);
    r0 = r1;
  }
  project(w.out, att_.data(), qd, t, h_.data(), e, w.moe ? nullptr : &w.gate_up);
  add_rows(x_.data(), h_.data(), t, e);
}

void Session::ffn_block(int64_t l, const float* h, float* out, int64_t t) {
  const LayerWeights& w = weights_.layer(l);
  if (w.moe) {
    moe_->forward(pool_, *w.moe, weights_.quantize_fn(), h, t, out);
    return;
  }
  const int64_t e = c_.n_embd, ff = c_.n_ff;
  project(w.gate_up, h, e, t, gate_up_.data(), 2 * ff, &w.down);
  pool_.parallel_for(0, t, ops::row_grain(8 * ff), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* gate = gate_up_.data() + r * 2 * ff;
      ops::swiglu_row(gate, gate + ff, ffn_h_.data() + r * ff, ff);
    }
  });
  project(w.down, ffn_h_.data(), ff, t, out, e, after_ffn(l));
}

void Session::forward_batch(const int32_t* tokens, int64_t t,
                            const std::vector<int64_t>& logit_rows,
                            const std::vector<int64_t>& hidden_rows, float* logits, float* hidden) {
  const int64_t e = c_.n_embd;
  pool_.parallel_for(0, t, ops::row_grain(2 * e), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) weights_.embed(tokens[r], x_.data() + r * e);
  });
  for (int64_t l = 0; l < c_.n_layer; ++l) {
    attention_block(l, t);
    const LayerWeights& w = weights_.layer(l);
    ops::rmsnorm(pool_, x_.data(), e, w.ffn_norm, t, e, c_.rms_eps, h_.data(), e);
    ffn_block(l, h_.data(), ffn_out_.data(), t);
    add_rows(x_.data(), ffn_out_.data(), t, e);
  }
  if (logit_rows.empty() && hidden_rows.empty()) return;
  // The rows whose logits or hidden states are wanted, gathered in ascending order (a prompt's
  // last row, every row of a decode step): each moves down or stays, never over one still to
  // be read. The norm is per row, so each row's bits are what they would be alone.
  std::vector<int64_t> wanted;
  std::set_union(logit_rows.begin(), logit_rows.end(), hidden_rows.begin(), hidden_rows.end(),
                 std::back_inserter(wanted));
  const int64_t rows = static_cast<int64_t>(wanted.size());
  for (int64_t i = 0; i < rows; ++i)
    if (wanted[sz(i)] != i) std::copy_n(x_.data() + wanted[sz(i)] * e, e, x_.data() + i * e);
  ops::rmsnorm(pool_, x_.data(), e, weights_.output_norm(), rows, e, c_.rms_eps, h_.data(), e);
  // Hidden rows out first; then the logit rows gathered once more (in h_) for the head.
  auto at = [&](int64_t row) {  // row's place among the gathered
    return std::lower_bound(wanted.begin(), wanted.end(), row) - wanted.begin();
  };
  for (size_t i = 0; i < hidden_rows.size(); ++i)
    std::copy_n(h_.data() + at(hidden_rows[i]) * e, e, hidden + static_cast<int64_t>(i) * e);
  if (logit_rows.empty()) return;
  const int64_t n_logit = static_cast<int64_t>(logit_rows.size());
  for (int64_t i = 0; i < n_logit; ++i)
    if (const int64_t from = at(logit_rows[sz(i)]); from != i)
      std::copy_n(h_.data() + from * e, e, h_.data() + i * e);
  project(weights_.output(), h_.data(), e, n_logit, logits, c_.n_vocab, &weights_.layer(0).qkv);
}

}  // namespace xtile
