#include "kernels/gemv_prefetch.h"

#include <strings.h>

#include <cstdlib>

#include "base/error.h"

namespace xtile {

namespace gemv_prefetch_detail {

std::atomic<int> level{0};
std::atomic<int> streams{0};
std::atomic<int> q8_0{0};

namespace {
// The first value resolved wins (set_* or another thread may have been first).
int settle(std::atomic<int>& v, int value) {
  int expected = 0;
  v.compare_exchange_strong(expected, value, std::memory_order_relaxed);
  return v.load(std::memory_order_relaxed);
}

// One spelling of a setting's environment variable and the value it stands for.
struct Choice {
  const char* spelling;
  int value;
};

// The value of environment variable `name`: `a`'s or `b`'s where it spells one of them (any
// case), `cpu` (this CPU's default) where it is unset; any other text is an error naming the
// variable and what it takes.
int from_env(const char* name, int cpu, Choice a, Choice b) {
  const char* env = std::getenv(name);
  if (env == nullptr) return cpu;
  for (const Choice& c : {a, b})
    if (strcasecmp(env, c.spelling) == 0) return c.value;
  fail(name, " must be ", a.spelling, " or ", b.spelling, ", got '", env, "'");
}
}  // namespace

int resolve() {
  const int cpu = static_cast<int>(default_gemv_prefetch(cpu_caps()));
  return settle(level,
                from_env("XTILE_GEMV_PREFETCH", cpu, {"l1", static_cast<int>(PrefetchLevel::kL1)},
                         {"l2", static_cast<int>(PrefetchLevel::kL2)}));
}

int resolve_streams() {
  return settle(streams, from_env("XTILE_GEMV_STREAMS", default_gemv_streams(cpu_caps()), {"1", 1},
                                  {"4", 4}));
}

int resolve_q8_0() {
  const int cpu = default_gemv_q8_0_four_l1(cpu_caps()) ? 2 : 1;
  return settle(q8_0, from_env("XTILE_GEMV_Q8_0", cpu, {"four-l1", 2}, {"shared", 1}));
}

}  // namespace gemv_prefetch_detail

std::string_view prefetch_level_name(PrefetchLevel level) {
  return level == PrefetchLevel::kL2 ? "L2" : "L1";
}

PrefetchLevel default_gemv_prefetch(const CpuCaps& caps) {
  if (caps.vendor == "AuthenticAMD" && caps.family == 0x19) return PrefetchLevel::kL2;
  return PrefetchLevel::kL1;
}

void set_gemv_prefetch(PrefetchLevel level) {
  gemv_prefetch_detail::level.store(static_cast<int>(level), std::memory_order_relaxed);
}

int default_gemv_streams(const CpuCaps& caps) {
  if (caps.vendor == "AuthenticAMD" && caps.family == 0x19) return 1;
  return 4;
}

bool default_gemv_q8_0_four_l1(const CpuCaps& caps) {
  if (caps.vendor != "AuthenticAMD" || caps.family != 0x19) return false;
  const int m = caps.model_number;  // Zen 3's model ranges in family 19h
  return m <= 0x0F || (m >= 0x20 && m <= 0x5F);
}

void set_gemv_q8_0_four_l1(bool four_l1) {
  gemv_prefetch_detail::q8_0.store(four_l1 ? 2 : 1, std::memory_order_relaxed);
}

void set_gemv_streams(int streams) {
  if (streams != 1 && streams != 4) fail("GEMV streams per tile must be 1 or 4, got ", streams);
  gemv_prefetch_detail::streams.store(streams, std::memory_order_relaxed);
}

}  // namespace xtile
