// What the CPU and the OS allow (DESIGN.md §4): CPUID leaf 1/7, XGETBV XCR0, and on Linux the
// per-process AMX tile-data permission (arch_prctl ARCH_REQ_XCOMP_PERM), requested once.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "base/float_contract.h"

namespace xtile {

enum class Tier : int { ref = 0, avx2 = 1, avx512 = 2, amx = 3, amx_emu = 4 };
constexpr int kTierCount = 5;
std::string_view tier_name(Tier t);                        // "ref", "avx2", ..., "amx-emu"
std::optional<Tier> tier_from_name(std::string_view name);  // accepts "amx-emu" and "amx_emu"

struct CpuCaps {
  std::string vendor;  // "GenuineIntel"
  std::string model;   // brand string
  // CPUID feature bits
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx512bf16 = false, amx_bf16 = false, amx_tile = false, amx_int8 = false;
  // OS support (XCR0)
  bool os_avx = false;     // XCR0 bits 1-2
  bool os_avx512 = false;  // XCR0 bits 5-7
  bool os_amx = false;     // XCR0 bits 17-18
  bool amx_permitted = false;  // arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) succeeded
  std::string amx_permission_error;  // why not, when amx_tile && os_amx && !amx_permitted
  int logical_cpus = 1;

  // "" when the tier can run here, else the reason (e.g. "AMX-TILE present but the kernel
  // refused XTILEDATA permission (arch_prctl: Operation not permitted)").
  std::string tier_unavailable_reason(Tier t) const;
  bool tier_available(Tier t) const { return tier_unavailable_reason(t).empty(); }
  Tier best_tier() const;  // amx > avx512 > avx2 > ref (amx-emu is never chosen automatically)
  std::string features_string() const;  // "avx2 fma f16c avx512f ... amx-int8"
};

// Detected once per process (thread-safe); requests AMX permission on first call.
const CpuCaps& cpu_caps();

// Resolves a --kernels / XTILE_KERNELS choice: "auto" (or empty) gives best_tier(); a named tier
// the CPU lacks throws xtile::Error "tier 'amx' is not available on this machine: <reason>"; an unknown name
// throws listing the valid names. `flag_value` wins over the environment variable.
Tier resolve_tier(const CpuCaps& caps, std::string_view flag_value);

}  // namespace xtile
