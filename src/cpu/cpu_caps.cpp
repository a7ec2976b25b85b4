// CPU and OS capability detection (DESIGN.md §4). This file is built for baseline x86-64: it only
// executes CPUID, XGETBV (after checking OSXSAVE) and, on Linux, the arch_prctl system call.
#include "cpu/cpu_caps.h"

#include <cpuid.h>
#include <sched.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

#include "base/error.h"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace xtile {
namespace {

constexpr std::string_view kTierNames[kTierCount] = {"ref", "avx2", "avx512", "amx", "amx-emu"};
constexpr const char* kValidTierList = "auto, ref, avx2, avx512, amx, amx-emu";

struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(uint32_t leaf, uint32_t subleaf) {
  Regs r;
  // __get_cpuid_count checks the maximum leaf of the range and leaves zeros when unsupported.
  if (!__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx)) r = Regs{};
  return r;
}

bool bit(uint32_t reg, int n) {
  return ((reg >> n) & 1u) != 0;
}

// XGETBV through its encoding, so that this translation unit needs no -mxsave. Only valid when
// CPUID.1:ECX.OSXSAVE is set (otherwise it raises #UD).
uint64_t xgetbv(uint32_t index) {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(index));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

std::string trim(std::string s) {
  const size_t first = s.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  const size_t last = s.find_last_not_of(' ');
  return s.substr(first, last - first + 1);
}

std::string errno_text(int err) {
  // strerror is not thread-safe; strerror_r's GNU form returns the message pointer.
  char buf[256];
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return std::string(strerror_r(err, buf, sizeof(buf)));
#else
  if (strerror_r(err, buf, sizeof(buf)) != 0) return "errno " + std::to_string(err);
  return std::string(buf);
#endif
}

// Linux gates the 8 KiB AMX tile-data state per process: until a thread asks with
// ARCH_REQ_XCOMP_PERM, the first tile instruction faults (SIGILL) even though XCR0 enables it.
// Returns true when permission is held; otherwise fills *error with why not.
bool request_process_amx_permission(std::string* error) {
#if defined(__linux__)
  constexpr int kArchGetXcompPerm = 0x1022;
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
    *error = errno_text(errno);
    return false;
  }
  // Confirm: the granted mask must contain XTILEDATA (a kernel could accept the call and still
  // not grant the feature).
  uint64_t mask = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &mask) != 0) {
    *error = "ARCH_GET_XCOMP_PERM failed: " + errno_text(errno);
    return false;
  }
  if ((mask & (uint64_t{1} << kXfeatureXtiledata)) == 0) {
    *error = "permission mask lacks XTILEDATA after ARCH_REQ_XCOMP_PERM";
    return false;
  }
  return true;
#else
  *error = "AMX tile permission is only requested on Linux";
  return false;
#endif
}

int count_logical_cpus() {
  // The CPUs this process may run on (taskset, cgroups cpusets), not all CPUs of the machine.
  // Grow the set for machines with more than CPU_SETSIZE CPUs (EINVAL means "too small").
  for (int ncpus = 1024; ncpus <= (1 << 16); ncpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(ncpus);
    if (set == nullptr) break;
    const size_t size = CPU_ALLOC_SIZE(ncpus);
    CPU_ZERO_S(size, set);
    if (sched_getaffinity(0, size, set) == 0) {
      const int n = CPU_COUNT_S(size, set);
      CPU_FREE(set);
      return n > 0 ? n : 1;
    }
    const int err = errno;
    CPU_FREE(set);
    if (err != EINVAL) break;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

CpuCaps detect() {
  CpuCaps c;
  const Regs l0 = cpuid(0, 0);
  const uint32_t max_leaf = l0.eax;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &l0.ebx, 4);
  std::memcpy(vendor + 4, &l0.edx, 4);
  std::memcpy(vendor + 8, &l0.ecx, 4);
  c.vendor = vendor;

  bool osxsave = false;
  if (max_leaf >= 1) {
    const Regs l1 = cpuid(1, 0);
    decode_family_model(l1.eax, &c.family, &c.model_number);
    c.fma = bit(l1.ecx, 12);
    c.sse42 = bit(l1.ecx, 19);
    osxsave = bit(l1.ecx, 27);
    c.avx = bit(l1.ecx, 28);
    c.f16c = bit(l1.ecx, 29);
  }
  if (max_leaf >= 7) {
    const Regs l7 = cpuid(7, 0);
    c.avx2 = bit(l7.ebx, 5);
    c.avx512f = bit(l7.ebx, 16);
    c.avx512dq = bit(l7.ebx, 17);
    c.avx512bw = bit(l7.ebx, 30);
    c.avx512vl = bit(l7.ebx, 31);
    c.avx512vnni = bit(l7.ecx, 11);
    c.amx_bf16 = bit(l7.edx, 22);
    c.amx_tile = bit(l7.edx, 24);
    c.amx_int8 = bit(l7.edx, 25);
    if (l7.eax >= 1) c.avx512bf16 = bit(cpuid(7, 1).eax, 5);  // EAX: max subleaf
  }

  const uint32_t max_ext = cpuid(0x80000000u, 0).eax;
  if (max_ext >= 0x80000004u) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      const Regs r = cpuid(0x80000002u + i, 0);
      std::memcpy(brand + 16 * i + 0, &r.eax, 4);
      std::memcpy(brand + 16 * i + 4, &r.ebx, 4);
      std::memcpy(brand + 16 * i + 8, &r.ecx, 4);
      std::memcpy(brand + 16 * i + 12, &r.edx, 4);
    }
    c.model = trim(brand);
  }

  if (osxsave) {
    const uint64_t xcr0 = xgetbv(0);
    c.os_avx = (xcr0 & 0x6) == 0x6;          // SSE (1) + AVX upper halves (2)
    c.os_avx512 = (xcr0 & 0xe6) == 0xe6;     // plus opmask (5), ZMM0-15 upper (6), ZMM16-31 (7)
    c.os_amx = (xcr0 & 0x60000) == 0x60000;  // XTILECFG (17) + XTILEDATA (18)
  }

  // Not requested here (AmxPermission): tier_unavailable_reason(Tier::amx) asks when needed.
  c.amx_permission = &process_amx_permission();
  c.logical_cpus = count_logical_cpus();
  return c;
}

}  // namespace

bool AmxPermission::granted(std::string* error) const {
  std::call_once(once_, [this] {
    requests_.fetch_add(1, std::memory_order_acq_rel);
    std::string why;
    granted_ = request_(&why);
    if (!granted_) error_ = why.empty() ? std::string("unknown error") : why;
  });
  if (!granted_ && error != nullptr) *error = error_;
  return granted_;
}

const AmxPermission& process_amx_permission() {
  static const AmxPermission permission(&request_process_amx_permission);
  return permission;
}

std::string_view tier_name(Tier t) {
  const int i = static_cast<int>(t);
  if (i < 0 || i >= kTierCount) fail("tier_name: invalid tier value ", i);
  return kTierNames[i];
}

std::optional<Tier> tier_from_name(std::string_view name) {
  if (name == "amx_emu") return Tier::amx_emu;
  for (int i = 0; i < kTierCount; ++i) {
    if (name == kTierNames[i]) return static_cast<Tier>(i);
  }
  return std::nullopt;
}

std::string CpuCaps::tier_unavailable_reason(Tier t) const {
  switch (t) {
    case Tier::ref:
    case Tier::amx_emu:
      return "";  // portable C++: runs anywhere
    case Tier::avx2:
      // The tier is compiled with -mavx2 -mfma -mf16c, so all three must be present.
      if (!avx || !avx2) return "CPU lacks AVX2";
      if (!fma) return "CPU lacks FMA";
      if (!f16c) return "CPU lacks F16C";
      if (!os_avx) return "OS has not enabled AVX state (XCR0)";
      return "";
    case Tier::avx512: {
      // Compiled with the avx2 flags plus -mavx512{f,bw,vl,dq,vnni}: all must be present.
      const std::string below = tier_unavailable_reason(Tier::avx2);
      if (!below.empty()) return below;
      if (!avx512f) return "CPU lacks AVX-512 F";
      if (!avx512bw) return "CPU lacks AVX-512 BW";
      if (!avx512vl) return "CPU lacks AVX-512 VL";
      if (!avx512dq) return "CPU lacks AVX-512 DQ";
      if (!avx512vnni) return "CPU lacks AVX-512 VNNI";
      if (!os_avx512) return "OS has not enabled AVX-512 state (XCR0)";
      return "";
    }
    case Tier::amx: {
      if (!amx_tile || !amx_int8) return "CPU lacks AMX-TILE/AMX-INT8";
      if (!os_amx) return "OS has not enabled AMX tile state (XCR0 bits 17-18)";
      // The amx tier's GEMV and its GEMM epilogue are AVX-512 code.
      const std::string below = tier_unavailable_reason(Tier::avx512);
      if (!below.empty()) return "the amx tier also needs the avx512 tier: " + below;
      // Last, so that the permission is only asked for when it is all that is missing.
      if (amx_permission == nullptr) return "AMX-TILE present but no XTILEDATA permission";
      std::string why;
      if (!amx_permission->granted(&why))
        return "AMX-TILE present but the kernel refused XTILEDATA permission (arch_prctl: " +
               why + ")";
      return "";
    }
  }
  return "unknown tier value " + std::to_string(static_cast<int>(t));
}

Tier CpuCaps::best_tier() const {
  for (Tier t : {Tier::amx, Tier::avx512, Tier::avx2}) {
    if (tier_available(t)) return t;
  }
  return Tier::ref;
}

std::string CpuCaps::features_string() const {
  const std::pair<bool, const char*> features[] = {
      {sse42, "sse4.2"},
      {avx, "avx"},
      {avx2, "avx2"},
      {fma, "fma"},
      {f16c, "f16c"},
      {avx512f, "avx512f"},
      {avx512dq, "avx512dq"},
      {avx512bw, "avx512bw"},
      {avx512vl, "avx512vl"},
      {avx512vnni, "avx512vnni"},
      {avx512bf16, "avx512bf16"},
      {amx_bf16, "amx-bf16"},
      {amx_tile, "amx-tile"},
      {amx_int8, "amx-int8"},
  };
  std::string out;
  for (const auto& [present, name] : features) {
    if (!present) continue;
    if (!out.empty()) out += ' ';
    out += name;
  }
  return out;
}

void decode_family_model(uint32_t eax, int* family, int* model) {
  const int base_family = static_cast<int>((eax >> 8) & 0xf);
  const int base_model = static_cast<int>((eax >> 4) & 0xf);
  *family = base_family == 0xf ? base_family + static_cast<int>((eax >> 20) & 0xff) : base_family;
  *model = base_family == 0x6 || base_family == 0xf
               ? base_model + (static_cast<int>((eax >> 16) & 0xf) << 4)
               : base_model;
}

const CpuCaps& cpu_caps() {
  // C++ guarantees one thread-safe initialisation, so AMX permission is requested once.
  static const CpuCaps caps = detect();
  return caps;
}

Tier resolve_tier(const CpuCaps& caps, std::string_view flag_value) {
  std::string_view choice = flag_value;
  const char* source = "--kernels";
  if (choice.empty()) {
    const char* env = std::getenv("XTILE_KERNELS");
    if (env != nullptr) {
      choice = env;
      source = "XTILE_KERNELS";
    }
  }
  if (choice.empty() || choice == "auto") return caps.best_tier();
  const std::optional<Tier> tier = tier_from_name(choice);
  if (!tier) {
    fail("unknown kernel tier '", choice, "' (from ", source, "); valid: ", kValidTierList);
  }
  const std::string reason = caps.tier_unavailable_reason(*tier);
  if (!reason.empty()) {
    fail("tier '", tier_name(*tier), "' is not available on this machine: ", reason);
  }
  return *tier;
}

}  // namespace xtile
