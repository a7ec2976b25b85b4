#include "model/session.h"

#include <algorithm>
#include <cmath>

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
  if (o.n_ctx < 0) fail("the context size must be positive, got ", o.n_ctx);
  return o.n_ctx == 0 ? c.n_ctx_train : o.n_ctx;
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
      kv_(weights.config().n_layer, resolve_ctx(weights.config(), options),
          weights.config().n_head_kv, weights.config().head_dim, options.kv_type,
          options.kv_type_v.value_or(options.kv_type)) {
  if (n_batch_ < 1) fail("the batch size must be at least 1, got ", n_batch_);
  // The kernels this build runs must give ref's bits; checked once per process and tier.
  self_check_tier_once(pool, weights.tier());
  n_batch_ = std::min(n_batch_, kv_.n_ctx());
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
  rope_scratch_.resize(sz(pool.size() * c_.n_rot));
  kv_.prefault(pool);
}

void Session::eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) fail("eval: no tokens to process");
  if (n_past_ + n > kv_.n_ctx())
    fail("context is full: ", n_past_, " positions used + ", n, " new tokens > context size ",
         kv_.n_ctx());
  for (int32_t t : tokens)
    if (t < 0 || t >= c_.n_vocab)
      fail("token id ", t, " is out of range (the vocabulary has ", c_.n_vocab, " tokens)");
  const int64_t v = c_.n_vocab;
  logits->resize(sz((all_logits ? n : 1) * v));
  // The contract's rounding and denormal handling on this thread, whatever the host set; the
  // pool's jobs set it on every thread too. The caller's MXCSR comes back on return.
  ContractFloatEnv env;
  for (int64_t i = 0; i < n; i += n_batch_) {
    const int64_t t = std::min(n_batch_, n - i);
    const bool last = i + t == n;
    float* out = all_logits ? logits->data() + i * v : (last ? logits->data() : nullptr);
    forward_batch(tokens.data() + i, t, all_logits, out);
  }
}

void Session::project(const Projection& p, const float* x, int64_t ldx, int64_t rows, float* y,
                      int64_t ldy) {
  bool quantized = false;  // the activations are quantized once, for every packed part
  int64_t col = 0;
  for (const Matrix& m : p.parts) {
    if (m.packed) {
      if (!quantized) {
        quantize_activations(pool_, weights_.quantize_fn(), x, ldx, rows, p.k, acts_);
        quantized = true;
      }
      matmul_quantized(pool_, weights_.kernels(m.source_type), m.pm, acts_.acts(), y + col, ldy);
    } else {
      matmul_f32(pool_, m.f32, m.n, m.k, x, ldx, rows, y + col, ldy);
    }
    col += m.n;
  }
}

void Session::truncate(int64_t n) {
  if (n < 0 || n > n_past_)
    fail("truncate: ", n, " is outside the ", n_past_, " positions in the cache");
  n_past_ = n;
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
  project(w.qkv, h_.data(), e, t, qkv_.data(), ldqkv);

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
      kv_.store(l, pos_[sz(r)], k, v);
    }
  });

  ops::AttentionShape shape;
  shape.n_head = c_.n_head;
  shape.n_head_kv = c_.n_head_kv;
  shape.head_dim = hd;
  shape.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  ops::attention(pool_, shape, qkv_.data(), ldqkv, pos_.data(), t, kv_.view(l), att_.data(), qd,
                 attention_scratch_);
  project(w.out, att_.data(), qd, t, h_.data(), e);
  add_rows(x_.data(), h_.data(), t, e);
}

void Session::ffn_block(int64_t l, const float* h, float* out, int64_t t) {
  const LayerWeights& w = weights_.layer(l);
  if (w.moe) {
    moe_->forward(pool_, *w.moe, weights_.quantize_fn(), h, t, out);
    return;
  }
  const int64_t e = c_.n_embd, ff = c_.n_ff;
  project(w.gate_up, h, e, t, gate_up_.data(), 2 * ff);
  pool_.parallel_for(0, t, ops::row_grain(8 * ff), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* gate = gate_up_.data() + r * 2 * ff;
      ops::swiglu_row(gate, gate + ff, ffn_h_.data() + r * ff, ff);
    }
  });
  project(w.down, ffn_h_.data(), ff, t, out, e);
}

void Session::forward_batch(const int32_t* tokens, int64_t t, bool logits_all_rows, float* logits) {
  const int64_t e = c_.n_embd;
  for (int64_t r = 0; r < t; ++r) pos_[sz(r)] = n_past_ + r;
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
  n_past_ += t;
  if (!logits) return;
  const int64_t first = logits_all_rows ? 0 : t - 1;
  const int64_t rows = t - first;
  ops::rmsnorm(pool_, x_.data() + first * e, e, weights_.output_norm(), rows, e, c_.rms_eps,
               h_.data(), e);
  project(weights_.output(), h_.data(), e, rows, logits, c_.n_vocab);
}

}  // namespace xtile
