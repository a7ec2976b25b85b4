#include "kernels/gemv_prefetch.h"

#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace xtile {

namespace gemv_prefetch_detail {

std::atomic<int> level{0};
std::atomic<int> streams{0};

namespace {
// The first value resolved wins (set_* or another thread may have been first).
int settle(std::atomic<int>& v, int value) {
  int expected = 0;
  v.compare_exchange_strong(expected, value, std::memory_order_relaxed);
  return v.load(std::memory_order_relaxed);
}
}  // namespace

int resolve() {
  PrefetchLevel l = default_gemv_prefetch(cpu_caps());
  if (const char* env = std::getenv("XTILE_GEMV_PREFETCH")) {
    if (std::strcmp(env, "l1") == 0 || std::strcmp(env, "L1") == 0) {
      l = PrefetchLevel::kL1;
    } else if (std::strcmp(env, "l2") == 0 || std::strcmp(env, "L2") == 0) {
      l = PrefetchLevel::kL2;
    } else {
      fail("XTILE_GEMV_PREFETCH must be l1 or l2, got '", env, "'");
    }
  }
  return settle(level, static_cast<int>(l));
}

int resolve_streams() {
  int n = default_gemv_streams(cpu_caps());
  if (const char* env = std::getenv("XTILE_GEMV_STREAMS")) {
    if (std::strcmp(env, "1") == 0) {
      n = 1;
    } else if (std::strcmp(env, "4") == 0) {
      n = 4;
    } else {
      fail("XTILE_GEMV_STREAMS must be 1 or 4, got '", env, "'");
    }
  }
  return settle(streams, n);
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

void set_gemv_streams(int streams) {
  if (streams != 1 && streams != 4) fail("GEMV streams per tile must be 1 or 4, got ", streams);
  gemv_prefetch_detail::streams.store(streams, std::memory_order_relaxed);
}

}  // namespace xtile
