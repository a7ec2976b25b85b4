#include "kernels/gemv_prefetch.h"

#include <cstdlib>
#include <cstring>

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

int resolve_q8_0() {
  bool four_l1 = default_gemv_q8_0_four_l1(cpu_caps());
  if (const char* env = std::getenv("XTILE_GEMV_Q8_0")) {
    if (std::strcmp(env, "four-l1") == 0) {
      four_l1 = true;
    } else if (std::strcmp(env, "shared") == 0) {
      four_l1 = false;
    } else {
      fail("XTILE_GEMV_Q8_0 must be four-l1 or shared, got '", env, "'");
    }
  }
  return settle(q8_0, four_l1 ? 2 : 1);
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
