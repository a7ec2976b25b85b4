#include "server/metrics.h"

#include <cstdio>

namespace xtile::server {

namespace {
namespace metrics {  // unity batches: CMakeLists.txt

void metric(std::string* out, const char* name, const char* type, const char* help, double v) {
  char value[64];
  std::snprintf(value, sizeof value, "%.17g", v);
  *out += std::string("# HELP xtile:") + name + " " + help + "\n# TYPE xtile:" + name + " " + type +
          "\nxtile:" + name + " " + value + "\n";
}

template <typename T>
double get(const std::atomic<T>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}

double ratio(double a, double b) {
  return b > 0 ? a / b : 0.0;
}

}  // namespace metrics
}  // namespace

std::string Metrics::render() const {
  using namespace metrics;  // this file's helpers
  std::string o;
  const double pt = get(prompt_tokens_total), ps = get(prompt_seconds_total);
  const double gt = get(tokens_predicted_total), gs = get(predicted_seconds_total);
  metric(&o, "prompt_tokens_total", "counter", "Prompt tokens evaluated.", pt);
  metric(&o, "prompt_seconds_total", "counter", "Seconds spent on prompt tokens.", ps);
  metric(&o, "prompt_tokens_cached_total", "counter",
         "Prompt tokens reused from a slot's KV cache instead of evaluated.",
         get(cached_tokens_total));
  metric(&o, "prompt_tokens_copied_total", "counter",
         "Of the cached prompt tokens, those copied from another slot's KV cache.",
         get(copied_tokens_total));
  metric(&o, "tokens_predicted_total", "counter", "Tokens generated.", gt);
  metric(&o, "tokens_predicted_seconds_total", "counter", "Seconds spent generating tokens.", gs);
  metric(&o, "n_decode_total", "counter", "Forward passes (scheduler steps).", get(decode_total));
  metric(&o, "n_tokens_max", "counter", "Most rows evaluated in one forward pass.",
         get(tokens_max));
  metric(&o, "n_busy_slots_per_decode", "gauge", "Average slots in a forward pass.",
         ratio(get(busy_slots_total), get(decode_total)));
  metric(&o, "prompt_tokens_seconds", "gauge", "Prompt throughput, tokens/s.", ratio(pt, ps));
  metric(&o, "predicted_tokens_seconds", "gauge", "Generation throughput, tokens/s.",
         ratio(gt, gs));
  metric(&o, "requests_processing", "gauge", "Requests in a slot.", get(requests_processing));
  metric(&o, "requests_deferred", "gauge", "Requests waiting for a slot.", get(requests_deferred));
  metric(&o, "requests_total", "counter", "Requests accepted into the queue.", get(requests_total));
  metric(&o, "requests_finished_total", "counter", "Requests that ended normally.",
         get(requests_finished));
  metric(&o, "requests_cancelled_total", "counter",
         "Requests stopped because the client went away.", get(requests_cancelled));
  metric(&o, "requests_failed_total", "counter", "Requests that ended with an error.",
         get(requests_failed));
  metric(&o, "requests_rejected_total", "counter", "Requests refused with 429 (queue full).",
         get(requests_rejected));
  metric(&o, "preemptions_total", "counter",
         "Times a request's KV cache was dropped to make room, then recomputed.",
         get(preemptions_total));
  metric(&o, "kv_cache_used_positions", "gauge",
         "KV positions held by all slots (idle slots keep their prompt cache).", get(kv_used));
  metric(&o, "kv_cache_budget_positions", "gauge", "KV positions all slots share (-c).",
         get(kv_budget));
  metric(&o, "kv_cache_usage_ratio", "gauge", "Used / budget positions.",
         ratio(get(kv_used), get(kv_budget)));
  metric(&o, "kv_cache_bytes", "gauge", "KV cache bytes allocated now.", get(kv_bytes));
  metric(&o, "slots_total", "gauge", "Slots (-np).", get(slots_total));
  return o;
}

}  // namespace xtile::server
