#include "server/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "base/float_env.h"
#include "server/gbnf_prefix.h"
#include "server/think_first.h"

namespace xtile::server {

namespace {
namespace scheduler {  // unity batches: CMakeLists.txt

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Pick {
  int32_t id = 0;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;
  std::string error;
};

// log-softmax of the raw logits (before penalties and temperature, as llama-server and OpenAI
// report them): the log-sum-exp in double, summed in index order, so the same logits give the
// same values wherever they were computed.
void log_probs(std::span<const float> logits, int32_t chosen, int n_top, Pick* p) {
  float max = logits[0];
  for (float l : logits) max = std::max(max, l);
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  const double lse = static_cast<double>(max) + std::log(sum);
  auto lp = [&](int32_t id) {
    return static_cast<float>(static_cast<double>(logits[static_cast<size_t>(id)]) - lse);
  };
  p->logprob = lp(chosen);
  if (n_top <= 0) return;
  const size_t n = std::min(static_cast<size_t>(n_top), logits.size());
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(),
                    [&](int32_t a, int32_t b) {
                      const float la = logits[static_cast<size_t>(a)];
                      const float lb = logits[static_cast<size_t>(b)];
                      return la > lb || (la == lb && a < b);
                    });
  p->top.reserve(n);
  for (size_t i = 0; i < n; ++i) p->top.emplace_back(ids[i], lp(ids[i]));
}

}  // namespace scheduler
}  // namespace

Scheduler::Scheduler(const WeightStore& weights, ThreadPool& pool, const Tokenizer& tokenizer,
                     const SchedulerOptions& options, Metrics& metrics)
    : tok_(tokenizer), pool_(pool), o_(options), m_(metrics) {
  if (o_.n_slots < 1) fail("the number of slots (-np) must be at least 1, got ", o_.n_slots);
  if (o_.n_ctx < 1) fail("the context of a slot must be at least 1, got ", o_.n_ctx);
  if (o_.kv_budget < o_.n_ctx)
    fail("the KV budget (", o_.kv_budget, " positions) must hold one whole context (", o_.n_ctx,
         ")");
  if (o_.n_batch < 1) fail("the batch size (-b) must be at least 1, got ", o_.n_batch);
  if (o_.max_queue < 0) fail("the queue size must be >= 0, got ", o_.max_queue);
  if (tokenizer.n_vocab() != weights.config().n_vocab)
    fail("the tokenizer has ", tokenizer.n_vocab(), " tokens but the model's vocabulary ",
         weights.config().n_vocab);
  SessionOptions so;
  so.n_ctx = o_.n_ctx;
  so.n_batch = o_.n_batch;
  so.kv_type = o_.kv_type_k;
  so.kv_type_v = o_.kv_type_v;
  so.n_seq_max = o_.n_slots;
  so.kv_budget = o_.kv_budget;
  session_ = std::make_unique<Session>(weights, pool, so);
  slots_.resize(static_cast<size_t>(o_.n_slots));
  for (int i = 0; i < o_.n_slots; ++i) slots_[static_cast<size_t>(i)].id = i;
  m_.kv_budget = session_->kv_budget();
  m_.slots_total = o_.n_slots;
  update_gauges();
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  stop();
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Scheduler::Submit Scheduler::submit(std::shared_ptr<Job> job) {
  return submit(std::vector<std::shared_ptr<Job>>{std::move(job)});
}

Scheduler::Submit Scheduler::submit(const std::vector<std::shared_ptr<Job>>& choices) {
  if (choices.empty()) return Submit::kQueued;
  std::vector<std::unique_ptr<Work>> works;
  for (size_t i = 0; i < choices.size(); ++i) {
    works.push_back(std::make_unique<Work>(choices[i], tok_));
    // The first earlier job with the same prompt reads it for this one.
    for (size_t j = 0; j < i; ++j)
      if (choices[j]->prompt() == choices[i]->prompt()) {
        works.back()->leader = choices[j];
        break;
      }
  }
  {
    std::lock_guard lock(mu_);
    if (stop_) return Submit::kStopping;
    if (static_cast<int64_t>(queue_.size()) >= o_.max_queue) {
      m_.requests_rejected.fetch_add(1, std::memory_order_relaxed);
      return Submit::kQueueFull;
    }
    for (auto& w : works) queue_.push_back(std::move(w));
    m_.requests_total.fetch_add(choices.size(), std::memory_order_relaxed);
    m_.requests_deferred.fetch_add(static_cast<int64_t>(choices.size()), std::memory_order_relaxed);
  }
  cv_.notify_one();
  return Submit::kQueued;
}

int Scheduler::retry_after_seconds() const {
  const double finished = static_cast<double>(m_.requests_finished.load());
  const double avg = finished > 0 ? m_.request_seconds_total.load() / finished : 1.0;
  const double waiting = static_cast<double>(m_.requests_deferred.load()) + 1.0;
  const double s = std::ceil(avg * waiting / o_.n_slots);
  return static_cast<int>(std::clamp(s, 1.0, 3600.0));
}

bool Scheduler::has_active() const {
  for (const Slot& s : slots_)
    if (s.work) return true;
  return false;
}

int64_t Scheduler::active_positions() const {
  int64_t n = 0;
  for (const Slot& s : slots_)
    if (s.work) n += static_cast<int64_t>(s.work->input.size());
  return n;
}

void Scheduler::loop() {
  // Sampling and log-probabilities run here and on the pool's threads: the same floating-point
  // environment on both, whatever the process was started with.
  ContractFloatEnv env;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || has_active(); });
      if (stop_) break;
    }
    drop_cancelled();
    admit();
    if (has_active()) step();
    update_gauges();
  }
  for (Slot& s : slots_)
    if (s.work) {
      m_.requests_processing.fetch_sub(1, std::memory_order_relaxed);
      fail_work(std::move(s.work), "the server is shutting down", 503);
    }
  std::deque<std::unique_ptr<Work>> left;
  {
    std::lock_guard lock(mu_);
    left.swap(queue_);
  }
  for (auto& w : left) {
    m_.requests_deferred.fetch_sub(1, std::memory_order_relaxed);
    fail_work(std::move(w), "the server is shutting down", 503);
  }
}

void Scheduler::drop_cancelled() {
  std::vector<std::unique_ptr<Work>> gone;
  {
    std::lock_guard lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if ((*it)->job->cancelled()) {
        gone.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& w : gone) {
    m_.requests_deferred.fetch_sub(1, std::memory_order_relaxed);
    m_.requests_cancelled.fetch_add(1, std::memory_order_relaxed);
    w->job->finish(FinishReason::kCancelled, w->stats);
  }
  for (Slot& s : slots_)
    if (s.work && s.work->job->cancelled()) end(s, FinishReason::kCancelled);
}

void Scheduler::admit() {
  using namespace scheduler;  // this file's helpers
  for (;;) {
    std::unique_ptr<Work> w;
    int id = -1;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) return;
      const Work& front = *queue_.front();
      if (waits_for_leader(front)) return;
      id = pick_slot(slots_, front.input);
      if (id < 0) return;
      // Admit only what fits beside the running requests' tokens (plus one to generate), so
      // that a newcomer does not push a running request out at once. Alone, anything fits.
      if (has_active() &&
          active_positions() + static_cast<int64_t>(front.input.size()) + 1 > session_->kv_budget())
        return;
      w = std::move(queue_.front());
      queue_.pop_front();
    }
    m_.requests_deferred.fetch_sub(1, std::memory_order_relaxed);
    const Clock::time_point now = Clock::now();
    if (!w->admitted_once) {
      w->admitted = now;
      w->stats.queue_ms = ms_between(w->submitted, now);
      // A constrained reply's grammar state starts here, on this thread (the vocabulary's bytes
      // are built on the first such request); a preempted request keeps its state.
      const GenerationParams& params = w->job->params();
      const JsonPrefix object(params.json_schema.get());
      if (params.json_object && (params.may_think || params.starts_in_think)) {
        w->constraint = std::make_unique<GrammarConstraint<ThinkFirst<JsonPrefix>>>(
            token_bytes(), ThinkFirst<JsonPrefix>(object, params.starts_in_think));
      } else if (params.json_object) {
        w->constraint = std::make_unique<GrammarConstraint<JsonPrefix>>(token_bytes(), object);
      } else if (params.grammar && params.grammar_triggers &&
                 (params.may_think || params.starts_in_think)) {
        using Lazy = LazyGrammar<GbnfPrefix>;
        w->constraint = std::make_unique<GrammarConstraint<ThinkFirst<Lazy>>>(
            token_bytes(),
            ThinkFirst<Lazy>(Lazy(GbnfPrefix(params.grammar.get()), params.grammar_triggers.get()),
                             params.starts_in_think));
      } else if (params.grammar && params.grammar_triggers) {
        using Lazy = LazyGrammar<GbnfPrefix>;
        w->constraint = std::make_unique<GrammarConstraint<Lazy>>(
            token_bytes(), Lazy(GbnfPrefix(params.grammar.get()), params.grammar_triggers.get()));
      } else if (params.grammar && (params.may_think || params.starts_in_think)) {
        w->constraint = std::make_unique<GrammarConstraint<ThinkFirst<GbnfPrefix>>>(
            token_bytes(),
            ThinkFirst<GbnfPrefix>(GbnfPrefix(params.grammar.get()), params.starts_in_think));
      } else if (params.grammar) {
        w->constraint = std::make_unique<GrammarConstraint<GbnfPrefix>>(
            token_bytes(), GbnfPrefix(params.grammar.get()));
      } else if (params.tool_calls) {
        w->constraint = std::make_unique<GrammarConstraint<ToolCallPrefix>>(
            token_bytes(),
            ToolCallPrefix(*params.tool_calls, params.may_think, params.starts_in_think));
      }
      if (params.prompt_logprobs) {  // the first prompt token has nothing before it to score it
        std::vector<TokenOut> first{
            TokenOut{w->input.front(), std::numeric_limits<float>::quiet_NaN(), {}, true}};
        w->job->publish("", &first);
        w->prompt_scored = 1;
      }
    }
    if (w->job->cancelled()) {
      m_.requests_cancelled.fetch_add(1, std::memory_order_relaxed);
      w->job->finish(FinishReason::kCancelled, w->stats);
      continue;
    }
    if (w->job->params().max_tokens == 0 && !w->job->params().prompt_logprobs &&
        w->job->params().embedding == Pooling::kNone) {
      // Nothing to generate: the prompt is not read.
      m_.requests_finished.fetch_add(1, std::memory_order_relaxed);
      w->job->finish(FinishReason::kLength, w->stats);
      continue;
    }
    Slot& s = slots_[static_cast<size_t>(id)];
    const size_t keep = reuse_prefix(s, *w);
    w->pooled.clear();
    w->token_rows.clear();
    if (!w->admitted_once) {
      w->admitted_once = true;
      w->order = ++admissions_;
      w->stats.cached_tokens = static_cast<int64_t>(std::min(keep, w->n_prompt));
      m_.cached_tokens_total.fetch_add(static_cast<uint64_t>(w->stats.cached_tokens),
                                       std::memory_order_relaxed);
    }
    w->stats.slot = id;
    s.work = std::move(w);
    m_.requests_processing.fetch_add(1, std::memory_order_relaxed);
  }
}

bool Scheduler::waits_for_leader(const Work& w) const {
  if (!w.leader) return false;
  for (const Slot& s : slots_)
    if (s.work && s.work->job == w.leader)
      return s.cache.size() + 1 < s.work->n_prompt;  // its prompt's last row is not needed
  return false;  // ended, cancelled or queued ahead: nothing to wait for
}

size_t Scheduler::reuse_prefix(Slot& s, const Work& w) {
  // At least the last input token is evaluated again, for its logits; and with prompt
  // log-probabilities still to publish, every position from the one before the first of them.
  size_t most = w.input.size() - 1;
  if (w.job->params().prompt_logprobs && w.prompt_scored < w.n_prompt)
    most = std::min(most, w.prompt_scored - 1);
  // A mean over the prompt's positions, or each position's row, needs every one evaluated.
  if (w.job->params().embedding == Pooling::kMean || w.job->params().embedding == Pooling::kTokens)
    most = 0;
  size_t keep = std::min(common_prefix(s.cache, w.input), most);
  const Slot* donor = nullptr;
  size_t donor_keep = keep;
  for (const Slot& o : slots_) {
    if (o.id == s.id) continue;
    const size_t p = std::min(common_prefix(o.cache, w.input), most);
    if (p > donor_keep) {
      donor = &o;
      donor_keep = p;
    }
  }
  if (donor) {
    // The copy needs room for donor_keep positions beside everything held but this slot's own.
    while (kv_free() + static_cast<int64_t>(s.cache.size()) < static_cast<int64_t>(donor_keep) &&
           evict_idle(donor->id)) {
    }
    if (kv_free() + static_cast<int64_t>(s.cache.size()) >= static_cast<int64_t>(donor_keep)) {
      session_->copy_prefix(donor->id, s.id, static_cast<int64_t>(donor_keep));
      s.cache.assign(donor->cache.begin(),
                     donor->cache.begin() + static_cast<std::ptrdiff_t>(donor_keep));
      m_.copied_tokens_total.fetch_add(
          static_cast<uint64_t>(std::min(donor_keep, w.n_prompt) - std::min(keep, w.n_prompt)),
          std::memory_order_relaxed);
      return donor_keep;
    }
    keep = std::min(keep, s.cache.size());  // an eviction may have taken this slot's cache
  }
  if (keep == 0) {
    session_->clear(s.id);
  } else {
    session_->truncate(s.id, static_cast<int64_t>(keep));
  }
  s.cache.resize(keep);
  return keep;
}

bool Scheduler::evict_idle(int spare) {
  Slot* lru = nullptr;
  for (Slot& s : slots_)
    if (!s.work && !s.cache.empty() && s.id != spare && (!lru || s.last_used < lru->last_used))
      lru = &s;
  if (!lru) return false;
  session_->release(lru->id);
  lru->cache.clear();
  return true;
}

bool Scheduler::preempt_youngest() {
  Slot* young = nullptr;
  int active = 0;
  for (Slot& s : slots_) {
    if (!s.work) continue;
    ++active;
    if (!young || s.work->order > young->work->order) young = &s;
  }
  if (active < 2) return false;  // one request alone always fits; never preempt the last
  session_->release(young->id);
  young->cache.clear();
  young->last_used = ++clock_;
  std::unique_ptr<Work> w = std::move(young->work);
  ++w->stats.preemptions;
  m_.preemptions_total.fetch_add(1, std::memory_order_relaxed);
  m_.requests_processing.fetch_sub(1, std::memory_order_relaxed);
  m_.requests_deferred.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  queue_.push_front(std::move(w));
  return true;
}

bool Scheduler::step() {
  using namespace scheduler;  // this file's helpers
  std::vector<Slot*> decoding, prefilling;
  auto classify = [&] {
    decoding.clear();
    prefilling.clear();
    for (Slot& s : slots_) {
      if (!s.work) continue;
      const size_t remaining = s.work->input.size() - s.cache.size();
      (remaining == 1 ? decoding : prefilling).push_back(&s);
    }
  };
  // Room for one row per generating slot, or for one prompt row when none generates.
  for (;;) {
    classify();
    const int64_t need =
        decoding.empty() ? (prefilling.empty() ? 0 : 1) : static_cast<int64_t>(decoding.size());
    if (need <= kv_free()) break;
    if (evict_idle() || preempt_youngest()) continue;
    // Cannot happen (a slot's context fits the budget and every other cache is gone), but a
    // request must never be left spinning: it ends here.
    Slot& s = decoding.empty() ? *prefilling.front() : *decoding.front();
    m_.requests_processing.fetch_sub(1, std::memory_order_relaxed);
    fail_work(std::move(s.work), "the KV cache budget is exhausted", 500);
    return false;
  }
  if (decoding.empty() && prefilling.empty()) return false;

  std::vector<Session::Row> rows;
  std::vector<LogitUse> uses;  // one per row with logits, in row order
  std::vector<Slot*> hidden_slots;  // one per row with a hidden state (embeddings), in row order
  for (Slot* s : decoding) {
    if (s->work->job->params().embedding != Pooling::kNone) {  // its prompt's last token
      rows.push_back({s->id, s->work->input.back(), false, true});
      hidden_slots.push_back(s);
      continue;
    }
    rows.push_back({s->id, s->work->input.back(), true});
    uses.push_back({s, -1});
  }
  const int64_t n_decode = static_cast<int64_t>(rows.size());
  // A chunk of the waiting prompts, oldest request first.
  std::sort(prefilling.begin(), prefilling.end(),
            [](const Slot* a, const Slot* b) { return a->work->order < b->work->order; });
  int64_t rows_left = std::max<int64_t>(0, o_.n_batch - n_decode);
  for (Slot* s : prefilling) {
    if (rows_left == 0) break;
    Work& w = *s->work;
    const int64_t done = static_cast<int64_t>(s->cache.size());
    const int64_t remaining = static_cast<int64_t>(w.input.size()) - done;
    int64_t take = std::min(remaining, rows_left);
    // Rows that score prompt tokens each keep a row of logits (a vocabulary of floats): a
    // bounded number per step.
    const bool scoring = w.job->params().prompt_logprobs && w.prompt_scored < w.n_prompt;
    if (scoring) take = std::min(take, kScoredRowsPerStep);
    const int64_t used = static_cast<int64_t>(rows.size());
    while (take > kv_free() - used && evict_idle()) {
    }
    take = std::min(take, kv_free() - used);
    if (take <= 0) break;
    const Pooling pooling = w.job->params().embedding;
    for (int64_t i = 0; i < take; ++i) {
      const int64_t pos = done + i;
      const bool last = pos + 1 == static_cast<int64_t>(w.input.size());
      if (pooling != Pooling::kNone) {  // an embedding: hidden states, no logits
        if (pooling != Pooling::kLast || last) {
          rows.push_back({s->id, w.input[static_cast<size_t>(pos)], false, true});
          hidden_slots.push_back(s);
        } else {
          rows.push_back({s->id, w.input[static_cast<size_t>(pos)], false, false});
        }
        continue;
      }
      // Position pos's logits score prompt token pos + 1 (never the last row's: its next token
      // is generated).
      const bool score = scoring && pos + 1 < static_cast<int64_t>(w.n_prompt) &&
                         pos + 1 >= static_cast<int64_t>(w.prompt_scored);
      rows.push_back({s->id, w.input[static_cast<size_t>(pos)], last || score});
      if (score) {
        uses.push_back({s, pos});
      } else if (last) {
        uses.push_back({s, -1});
      }
    }
    rows_left -= take;
  }
  if (rows.empty()) return false;

  const Clock::time_point t0 = Clock::now();
  try {
    session_->eval_rows(rows, &logits_, &hidden_);
  } catch (const std::exception& e) {
    // Not expected (everything was checked); the requests in this step end, the others go on.
    std::vector<int> seqs;
    for (const Session::Row& r : rows) seqs.push_back(r.seq);
    std::sort(seqs.begin(), seqs.end());
    seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
    for (int id : seqs) {
      Slot& s = slots_[static_cast<size_t>(id)];
      session_->release(id);
      s.cache.clear();
      if (!s.work) continue;
      m_.requests_processing.fetch_sub(1, std::memory_order_relaxed);
      fail_work(std::move(s.work), std::string("evaluation failed: ") + e.what(), 500);
    }
    return true;
  }
  for (const Session::Row& r : rows) slots_[static_cast<size_t>(r.seq)].cache.push_back(r.token);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const int64_t n_rows = static_cast<int64_t>(rows.size());
  const int64_t n_prompt = n_rows - n_decode;
  m_.prompt_tokens_total.fetch_add(static_cast<uint64_t>(n_prompt), std::memory_order_relaxed);
  m_.prompt_seconds_total.fetch_add(seconds * static_cast<double>(n_prompt) / n_rows,
                                    std::memory_order_relaxed);
  m_.predicted_seconds_total.fetch_add(seconds * static_cast<double>(n_decode) / n_rows,
                                       std::memory_order_relaxed);
  m_.decode_total.fetch_add(1, std::memory_order_relaxed);
  int busy = 0;
  for (const Slot& s : slots_) busy += s.work ? 1 : 0;
  m_.busy_slots_total.fetch_add(static_cast<uint64_t>(busy), std::memory_order_relaxed);
  if (n_rows > m_.tokens_max.load(std::memory_order_relaxed)) m_.tokens_max = n_rows;
  pool_embeddings(hidden_slots);
  score_prompts(uses);
  std::vector<std::pair<Slot*, size_t>> to_sample;
  for (size_t r = 0; r < uses.size(); ++r) {
    if (uses[r].pos >= 0) continue;
    Slot& s = *uses[r].slot;
    if (s.work->job->params().max_tokens == 0) {  // echo only: the prompt is scored, no token
      s.work->stats.prompt_ms = ms_between(s.work->admitted, Clock::now());
      end(s, FinishReason::kLength);
      continue;
    }
    to_sample.push_back({&s, r});
  }
  sample(to_sample);
  return true;
}

void Scheduler::pool_embeddings(const std::vector<Slot*>& hidden_slots) {
  using namespace scheduler;  // this file's helpers
  const size_t e = hidden_slots.empty() ? 0 : hidden_.size() / hidden_slots.size();
  for (size_t r = 0; r < hidden_slots.size(); ++r) {
    Slot& s = *hidden_slots[r];
    Work& w = *s.work;
    const float* h = hidden_.data() + r * e;
    // Last pooling: only the last row comes here. Mean and none: every row, in position order.
    const Pooling pooling = w.job->params().embedding;
    if (pooling == Pooling::kTokens) {
      w.token_rows.emplace_back(h, h + e);
    } else {
      if (w.pooled.empty()) w.pooled.assign(e, 0.0);
      if (pooling == Pooling::kLast) {
        std::copy_n(h, e, w.pooled.begin());
      } else {
        for (size_t i = 0; i < e; ++i) w.pooled[i] += h[i];
      }
    }
    // The prompt's last row is the slot's last in the step (its rows are consecutive).
    const bool slot_last = r + 1 == hidden_slots.size() || hidden_slots[r + 1] != &s;
    if (!slot_last || s.cache.size() < w.input.size()) continue;  // more of the prompt to read
    // The mean in double, summed in position order: the bits are the rows' whatever the batch.
    std::vector<std::vector<float>> out;
    if (pooling == Pooling::kTokens) {
      out = std::move(w.token_rows);
    } else {
      const double n = pooling == Pooling::kMean ? static_cast<double>(w.input.size()) : 1.0;
      out.emplace_back(e);
      for (size_t i = 0; i < e; ++i) out[0][i] = static_cast<float>(w.pooled[i] / n);
    }
    w.stats.prompt_ms = ms_between(w.admitted, Clock::now());
    w.job->set_embedding(std::move(out));
    end(s, FinishReason::kStop);
  }
}

void Scheduler::score_prompts(const std::vector<LogitUse>& uses) {
  using namespace scheduler;  // this file's helpers
  std::vector<size_t> rows;
  for (size_t r = 0; r < uses.size(); ++r)
    if (uses[r].pos >= 0) rows.push_back(r);
  if (rows.empty()) return;
  const size_t v = static_cast<size_t>(session_->n_vocab());
  std::vector<Pick> picks(rows.size());
  auto score = [&](size_t k) {
    const LogitUse& u = uses[rows[k]];
    const Work& w = *u.slot->work;
    const std::span<const float> logits(logits_.data() + rows[k] * v, v);
    picks[k].id = w.input[static_cast<size_t>(u.pos + 1)];
    log_probs(logits, picks[k].id, w.job->params().n_probs, &picks[k]);
  };
  pool_.run([&](int t, int n) {
    for (size_t k = static_cast<size_t>(t); k < rows.size(); k += static_cast<size_t>(n)) score(k);
  });
  // A slot's rows are consecutive and in position order: each slot's tokens go out in one piece.
  std::vector<TokenOut> out;
  for (size_t k = 0; k < rows.size(); ++k) {
    const LogitUse& u = uses[rows[k]];
    out.push_back(TokenOut{picks[k].id, picks[k].logprob, std::move(picks[k].top), true});
    u.slot->work->prompt_scored = static_cast<size_t>(u.pos) + 2;
    if (k + 1 == rows.size() || uses[rows[k + 1]].slot != u.slot)
      u.slot->work->job->publish("", &out);
  }
}

void Scheduler::sample(const std::vector<std::pair<Slot*, size_t>>& slot_rows) {
  using namespace scheduler;  // this file's helpers
  const size_t k = slot_rows.size();
  if (k == 0) return;
  const size_t v = static_cast<size_t>(session_->n_vocab());
  std::vector<Pick> picks(k);
  auto pick = [&](size_t i) {
    Work& w = *slot_rows[i].first->work;
    const std::span<const float> logits(logits_.data() + slot_rows[i].second * v, v);
    try {
      const auto draw = [&](std::span<const float> l) { return w.sampler.sample(l, w.input); };
      picks[i].id = w.constraint ? draw_constrained(*w.constraint, logits, draw) : draw(logits);
      const GenerationParams& p = w.job->params();
      if (p.logprobs || p.n_probs > 0) log_probs(logits, picks[i].id, p.n_probs, &picks[i]);
    } catch (const std::exception& e) {
      picks[i].error = e.what();
    }
  };
  // Each request's sampler is its own, so the slots sample in parallel; which thread samples a
  // slot changes nothing in what it picks.
  if (k == 1) {
    pick(0);
  } else {
    pool_.run([&](int t, int n) {
      for (size_t i = static_cast<size_t>(t); i < k; i += static_cast<size_t>(n)) pick(i);
    });
  }
  const Clock::time_point now = Clock::now();
  for (size_t i = 0; i < k; ++i) {
    Slot& s = *slot_rows[i].first;
    Work& w = *s.work;
    Pick& p = picks[i];
    if (!p.error.empty()) {
      m_.requests_processing.fetch_sub(1, std::memory_order_relaxed);
      fail_work(std::move(s.work), "sampling failed: " + p.error, 500);
      continue;
    }
    if (w.n_generated == 0) {
      w.first_token = now;
      w.stats.prompt_ms = ms_between(w.admitted, now);
    }
    ++w.n_generated;
    m_.tokens_predicted_total.fetch_add(1, std::memory_order_relaxed);
    const GenerationParams& params = w.job->params();
    if (!params.ignore_eos && tok_.is_eog(p.id)) {
      w.text.finish();
      emit(s, true);
      end(s, FinishReason::kStop);
      continue;
    }
    w.input.push_back(p.id);
    if (w.constraint) w.constraint->accept(p.id);  // one it allows (draw_constrained)
    const size_t begin = w.text.decoded_bytes();
    const bool stopped = w.text.push(p.id);
    w.held.push_back({TokenOut{p.id, p.logprob, std::move(p.top)}, begin, w.text.decoded_bytes()});
    if (stopped) {
      w.stats.stop_word = w.text.stop_word();
      emit(s, true);
      end(s, FinishReason::kStop);
      continue;
    }
    if (w.constraint && w.constraint->complete()) {  // the grammar admits no more: whole
      w.text.finish();
      emit(s, true);
      end(s, FinishReason::kStop);
      continue;
    }
    // The new token needs a position to be evaluated at: none left means the context is full.
    const bool length = (params.max_tokens >= 0 && w.n_generated >= params.max_tokens) ||
                        static_cast<int64_t>(w.input.size()) > o_.n_ctx;
    if (length) {
      w.text.finish();
      emit(s, true);
      end(s, FinishReason::kLength);
      continue;
    }
    emit(s, false);
  }
}

const TokenBytes& Scheduler::token_bytes() {
  if (!token_bytes_) token_bytes_ = std::make_unique<TokenBytes>(tok_);
  return *token_bytes_;
}

void Scheduler::emit(Slot& s, bool finished) {
  Work& w = *s.work;
  const std::string& text = w.text.text();
  const size_t released = w.text.released();
  std::vector<TokenOut> out;
  size_t n = 0;
  for (; n < w.held.size(); ++n) {
    const Work::Held& h = w.held[n];
    if (finished) {
      // A stop string is cut with what follows it: the tokens that only wrote into it go too.
      if (w.text.stopped() && h.begin >= text.size()) break;
    } else if (h.end > released) {
      break;
    }
    out.push_back(std::move(w.held[n].token));
  }
  w.held.erase(w.held.begin(), w.held.begin() + static_cast<std::ptrdiff_t>(n));
  if (finished) w.held.clear();
  w.job->publish(std::string_view(text).substr(w.text_published, released - w.text_published),
                 &out);
  w.text_published = released;
}

void Scheduler::end(Slot& s, FinishReason reason) {
  using namespace scheduler;  // this file's helpers
  std::unique_ptr<Work> w = std::move(s.work);
  s.last_used = ++clock_;
  const Clock::time_point now = Clock::now();
  w->stats.completion_tokens = w->n_generated;
  if (w->n_generated > 0) w->stats.predicted_ms = ms_between(w->first_token, now);
  m_.requests_processing.fetch_sub(1, std::memory_order_relaxed);
  if (reason == FinishReason::kCancelled) {
    m_.requests_cancelled.fetch_add(1, std::memory_order_relaxed);
  } else {
    m_.requests_finished.fetch_add(1, std::memory_order_relaxed);
    m_.request_seconds_total.fetch_add(std::chrono::duration<double>(now - w->admitted).count(),
                                       std::memory_order_relaxed);
  }
  w->job->finish(reason, w->stats);
}

void Scheduler::fail_work(std::unique_ptr<Work> w, const std::string& message, int status) {
  m_.requests_failed.fetch_add(1, std::memory_order_relaxed);
  w->stats.completion_tokens = w->n_generated;
  w->job->fail(message, status, w->stats);
}

void Scheduler::update_gauges() {
  m_.kv_used.store(session_->kv_used(), std::memory_order_relaxed);
  m_.kv_bytes.store(session_->kv_bytes(), std::memory_order_relaxed);
  std::vector<SlotView> view;
  view.reserve(slots_.size());
  for (const Slot& s : slots_) {
    SlotView v;
    v.id = s.id;
    v.n_cached = static_cast<int64_t>(s.cache.size());
    if (s.work) {
      v.processing = true;
      v.n_prompt = static_cast<int64_t>(s.work->n_prompt);
      v.n_decoded = s.work->n_generated;
      v.n_predict = s.work->job->params().max_tokens;
    }
    view.push_back(v);
  }
  const std::lock_guard lock(m_.slots_mu);
  m_.slots = std::move(view);
}

}  // namespace xtile::server
