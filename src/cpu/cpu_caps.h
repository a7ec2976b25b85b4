// What the CPU and the OS allow (DESIGN.md §4): CPUID leaf 1/7, XGETBV XCR0, and on Linux the
// per-process AMX tile-data permission (arch_prctl ARCH_REQ_XCOMP_PERM), requested once, when the
// amx tier is first considered (AmxPermission below).
#pragma once

#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/float_contract.h"

namespace xtile {

// The permission to use AMX tile data, asked once and remembered. Asking is not free of side
// effects: once Linux grants XTILEDATA, every signal frame of the process carries the 8 KiB tile
// state, so a host program's later sigaltstack() of the usual small size fails. So nothing asks
// at detection (cpu_caps(), the thread pool); the first query of the amx tier's availability on
// a CPU and OS with tiles does (--kernels amx, auto on an AMX machine, xtile info).
class AmxPermission {
 public:
  // Returns true when granted; otherwise sets *error to why not.
  using Request = bool (*)(std::string* error);
  explicit AmxPermission(Request request) : request_(request) {}
  AmxPermission(const AmxPermission&) = delete;
  AmxPermission& operator=(const AmxPermission&) = delete;

  // Runs the request on the first call (thread-safe), then returns its answer; *error (may be
  // null) receives the refusal's reason.
  bool granted(std::string* error) const;
  // How many times the request ran: 0 before the first granted(), then 1.
  int requests() const { return requests_.load(std::memory_order_acquire); }

 private:
  Request request_;
  mutable std::once_flag once_;
  mutable bool granted_ = false;
  mutable std::string error_;
  mutable std::atomic<int> requests_{0};
};

// The process's permission: on Linux, arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) then
// ARCH_GET_XCOMP_PERM to confirm; elsewhere always refused.
const AmxPermission& process_amx_permission();

enum class Tier : int { ref = 0, avx2 = 1, avx512 = 2, amx = 3, amx_emu = 4 };
constexpr int kTierCount = 5;
std::string_view tier_name(Tier t);                        // "ref", "avx2", ..., "amx-emu"
std::optional<Tier> tier_from_name(std::string_view name);  // accepts "amx-emu" and "amx_emu"

struct CpuCaps {
  std::string vendor;  // "GenuineIntel"
  std::string model;   // brand string
  // CPUID leaf 1's display family and model (base + extended fields): AMD 0x19 is Zen 3/4,
  // 0x1A Zen 5; Intel 6 with models such as 0x8F (Sapphire Rapids).
  int family = 0, model_number = 0;
  // CPUID feature bits
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx512bf16 = false, amx_bf16 = false, amx_tile = false, amx_int8 = false;
  // OS support (XCR0)
  bool os_avx = false;     // XCR0 bits 1-2
  bool os_avx512 = false;  // XCR0 bits 5-7
  bool os_amx = false;     // XCR0 bits 17-18
  // Asked (once, see AmxPermission) only when the amx tier's availability is queried and every
  // other requirement of that tier holds; null: no permission (hand-made caps in tests set their
  // own). cpu_caps() points it at process_amx_permission().
  const AmxPermission* amx_permission = nullptr;
  int logical_cpus = 1;

  // "" when the tier can run here, else the reason (e.g. "AMX-TILE present but the kernel
  // refused XTILEDATA permission (arch_prctl: Operation not permitted)"). For Tier::amx this may
  // request the permission (the first time, when all else holds); other tiers never do.
  std::string tier_unavailable_reason(Tier t) const;
  bool tier_available(Tier t) const { return tier_unavailable_reason(t).empty(); }
  Tier best_tier() const;  // amx > avx512 > avx2 > ref (amx-emu is never chosen automatically)
  std::string features_string() const;  // "avx2 fma f16c avx512f ... amx-int8"
};

// CPUID leaf 1 EAX -> the display family and model: the extended family is added when the
// base family is 0xF, the extended model prepended when it is 6 or 0xF (Intel's and AMD's rule).
void decode_family_model(uint32_t leaf1_eax, int* family, int* model);

// Detected once per process (thread-safe). Reads CPUID and XCR0 only: the AMX permission is
// requested later, if the amx tier is considered (AmxPermission).
const CpuCaps& cpu_caps();

// Resolves a --kernels / XTILE_KERNELS choice: "auto" (or empty) gives best_tier() (which asks for
// the AMX permission on a CPU and OS with tiles); a named tier
// the CPU lacks throws xtile::Error "tier 'amx' is not available on this machine: <reason>"; an unknown name
// throws listing the valid names. `flag_value` wins over the environment variable.
Tier resolve_tier(const CpuCaps& caps, std::string_view flag_value);

}  // namespace xtile
