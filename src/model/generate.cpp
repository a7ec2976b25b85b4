#include "model/generate.h"

#include <chrono>

#include "base/error.h"
#include "ops/ops.h"

namespace xtile {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

int32_t pick_greedy(std::span<const float> logits) {
  return static_cast<int32_t>(ops::argmax(logits.data(), static_cast<int64_t>(logits.size())));
}

int64_t check_generation_fits(const Session& session, int64_t n_prompt, int64_t n_predict) {
  const int64_t room = session.n_ctx() - session.n_past();
  if (n_prompt == 0) fail("the prompt is empty (no tokens to start from)");
  if (n_prompt > room)
    fail("the prompt has ", n_prompt, " tokens, more than the context size ", session.n_ctx(),
         session.n_past() ? " allows after the tokens already in the cache" : "",
         " (raise it with -c)");
  if (n_predict < -1) fail("-n must be -1 (until the context is full) or >= 0, got ", n_predict);
  const int64_t n = n_predict == -1 ? room - n_prompt : n_predict;
  if (n_prompt + n > room)
    fail("-n ", n, ": the prompt (", n_prompt, " tokens) + ", n, " generated tokens need ",
         n_prompt + n, " positions, more than the context size ", session.n_ctx(),
         " (raise -c or lower -n)");
  return n;
}

GenerateResult generate(Session& session, std::span<const int32_t> prompt,
                        const GenerateOptions& o) {
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t n_predict = check_generation_fits(session, n_prompt, o.n_predict);

  GenerateResult result;
  GenerationTimings& tm = result.timings;
  const int64_t v = session.n_vocab();
  std::vector<float> logits;
  std::vector<int32_t> history(prompt.begin(), prompt.end());

  auto start = Clock::now();
  const int64_t pos0 = session.n_past();
  session.eval(prompt, static_cast<bool>(o.on_logits), &logits);
  tm.prompt_tokens = n_prompt;
  tm.prompt_ms = ms_since(start);
  if (o.on_logits)
    for (int64_t i = 0; i < n_prompt; ++i)
      o.on_logits(pos0 + i, prompt[static_cast<size_t>(i)],
                  std::span<const float>(logits.data() + i * v, static_cast<size_t>(v)));
  std::span<const float> last(logits.data() + (o.on_logits ? (n_prompt - 1) * v : 0),
                              static_cast<size_t>(v));

  for (int64_t i = 0; i < n_predict; ++i) {
    start = Clock::now();
    const int32_t token = o.pick ? o.pick(last, history) : pick_greedy(last);
    tm.sample_ms += ms_since(start);
    result.tokens.push_back(token);
    history.push_back(token);
    if (o.on_token) o.on_token(token);
    if (o.is_eog && o.is_eog(token)) {
      result.stopped_at_eog = true;
      break;
    }
    if (i + 1 == n_predict && !o.eval_last) break;
    start = Clock::now();
    const int64_t pos = session.n_past();
    session.eval(std::span<const int32_t>(&token, 1), false, &logits);
    tm.eval_ms += ms_since(start);
    ++tm.eval_runs;
    last = std::span<const float>(logits.data(), static_cast<size_t>(v));
    if (o.on_logits) o.on_logits(pos, token, last);
  }
  return result;
}

}  // namespace xtile
