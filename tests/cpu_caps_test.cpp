// CPU detection (DESIGN.md §4): the detected bits are consistent with each other and with what the
// kernel reports in /proc/cpuinfo, tier availability follows the documented rules (checked on
// hand-made CpuCaps, so every branch runs on any machine), and --kernels / XTILE_KERNELS resolve
// as documented.
#include "cpu/cpu_caps.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "cpu/thread_pool.h"
#include "kernels/gemv_prefetch.h"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace xtile {
namespace {
namespace cpu_caps_test {  // unity batches: CMakeLists.txt

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Sets (or unsets, for nullptr) an environment variable for the scope, restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_old_ = old != nullptr;
    if (had_old_) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_old_) {
      setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::string old_;
  bool had_old_ = false;
};

CpuCaps avx2_machine() {
  CpuCaps c;
  c.sse42 = c.avx = c.avx2 = c.fma = c.f16c = true;
  c.os_avx = true;
  return c;
}

CpuCaps avx512_machine() {  // Ice Lake / Zen 4: AVX-512 with VNNI, no AMX
  CpuCaps c = avx2_machine();
  c.avx512f = c.avx512bw = c.avx512vl = c.avx512dq = c.avx512vnni = true;
  c.os_avx512 = true;
  return c;
}

// Permissions with a fixed answer.
const AmxPermission& granted_permission() {
  static const AmxPermission p([](std::string*) { return true; });
  return p;
}
const AmxPermission& refused_permission() {
  static const AmxPermission p([](std::string* error) {
    *error = "Operation not permitted";
    return false;
  });
  return p;
}

CpuCaps amx_machine() {  // Sapphire Rapids with the permission granted
  CpuCaps c = avx512_machine();
  c.avx512bf16 = c.amx_bf16 = c.amx_tile = c.amx_int8 = true;
  c.os_amx = true;
  c.amx_permission = &granted_permission();
  return c;
}

std::string resolve_error(const CpuCaps& caps, std::string_view flag) {
  try {
    resolve_tier(caps, flag);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ----------------------------------------------------------------------------------------------
// Detection on this machine

TEST(CpuCapsDetect, TierAvailabilityIsConsistentWithFeatureBits) {
  const CpuCaps& c = cpu_caps();
  EXPECT_EQ(c.vendor.size(), 12u) << c.vendor;
  EXPECT_TRUE(c.tier_available(Tier::ref));
  EXPECT_TRUE(c.tier_available(Tier::amx_emu));
  if (c.tier_available(Tier::avx2)) {
    EXPECT_TRUE(c.avx && c.avx2 && c.fma && c.f16c && c.os_avx);
  }
  if (c.tier_available(Tier::avx512)) {
    EXPECT_TRUE(c.tier_available(Tier::avx2));
    EXPECT_TRUE(c.avx512f && c.avx512bw && c.avx512vl && c.avx512dq && c.avx512vnni);
    EXPECT_TRUE(c.os_avx512);
  }
  EXPECT_EQ(c.amx_permission, &process_amx_permission());
  if (c.tier_available(Tier::amx)) {
    EXPECT_TRUE(c.amx_tile && c.amx_int8 && c.os_amx && c.amx_permission->granted(nullptr));
    EXPECT_TRUE(c.tier_available(Tier::avx512));
  } else {
    EXPECT_TRUE(contains(c.tier_unavailable_reason(Tier::amx), "AMX") ||
                contains(c.tier_unavailable_reason(Tier::amx), "avx512"))
        << c.tier_unavailable_reason(Tier::amx);
  }
  if (!c.amx_tile) {
    EXPECT_EQ(c.tier_unavailable_reason(Tier::amx), "CPU lacks AMX-TILE/AMX-INT8");
  }
  // Permission is only requested when the CPU and the OS both support tiles.
  if (!(c.amx_tile && c.amx_int8 && c.os_amx)) {
    EXPECT_EQ(process_amx_permission().requests(), 0);
  }
  // OS state implies the CPU feature (XCR0 bits can only be set for supported state).
  if (c.os_avx512) {
    EXPECT_TRUE(c.os_avx);
  }

  const Tier best = c.best_tier();
  EXPECT_TRUE(c.tier_available(best));
  EXPECT_NE(best, Tier::amx_emu);
  for (Tier t : {Tier::amx, Tier::avx512, Tier::avx2}) {
    if (c.tier_available(t)) {
      EXPECT_EQ(best, t);
      break;
    }
  }
}

TEST(CpuCapsDetect, FeatureBitsAgreeWithProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::set<std::string> flags;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      std::istringstream words(line.substr(line.find(':') + 1));
      for (std::string w; words >> w;) flags.insert(w);
      break;
    }
  }
  if (flags.empty()) GTEST_SKIP() << "/proc/cpuinfo has no flags line (not Linux?)";
  const CpuCaps& c = cpu_caps();
  // The kernel lists a flag only when the CPU reports it, so a listed flag must be detected.
  const std::pair<const char*, bool> pairs[] = {
      {"sse4_2", c.sse42},
      {"avx", c.avx},
      {"avx2", c.avx2},
      {"fma", c.fma},
      {"f16c", c.f16c},
      {"avx512f", c.avx512f},
      {"avx512bw", c.avx512bw},
      {"avx512vl", c.avx512vl},
      {"avx512dq", c.avx512dq},
      {"avx512_vnni", c.avx512vnni},
      {"avx512_bf16", c.avx512bf16},
      {"amx_bf16", c.amx_bf16},
      {"amx_tile", c.amx_tile},
      {"amx_int8", c.amx_int8},
  };
  for (const auto& [flag, detected] : pairs) {
    if (flags.count(flag)) {
      EXPECT_TRUE(detected) << flag << " is in /proc/cpuinfo";
    }
  }
  // Conversely, once the OS has enabled the state it lists these flags.
  if (c.os_avx) {
    EXPECT_EQ(c.avx2, flags.count("avx2") == 1);
  }
  if (c.os_avx512) {
    EXPECT_EQ(c.avx512f, flags.count("avx512f") == 1);
    EXPECT_EQ(c.avx512vnni, flags.count("avx512_vnni") == 1);
  }
}

TEST(CpuCapsDetect, LogicalCpusIsTheAffinityMaskSize) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(cpu_caps().logical_cpus, CPU_COUNT(&set));
}

TEST(CpuCapsDetect, DetectsOnceForAllThreads) {
  std::vector<const CpuCaps*> seen(8, nullptr);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([&seen, i] { seen[i] = &cpu_caps(); });
  for (std::thread& t : threads) t.join();
  for (const CpuCaps* p : seen) EXPECT_EQ(p, &cpu_caps());
}

TEST(CpuCapsDetect, FeaturesStringListsDetectedFeatures) {
  const CpuCaps& c = cpu_caps();
  const std::string s = " " + c.features_string() + " ";
  EXPECT_EQ(contains(s, " avx2 "), c.avx2) << s;
  EXPECT_EQ(contains(s, " avx512vnni "), c.avx512vnni) << s;
  EXPECT_EQ(contains(s, " amx-int8 "), c.amx_int8) << s;
  EXPECT_EQ(amx_machine().features_string(),
            "sse4.2 avx avx2 fma f16c avx512f avx512dq avx512bw avx512vl avx512vnni avx512bf16 "
            "amx-bf16 amx-tile amx-int8");
  EXPECT_EQ(CpuCaps{}.features_string(), "");
}

// ----------------------------------------------------------------------------------------------
// Tier rules on hand-made capabilities

TEST(CpuCapsDetect, FamilyAndModelFromLeaf1) {
  int family = 0, model = 0;
  decode_family_model(0x00A10F11u, &family, &model);  // EPYC 9004 (Zen 4 "Genoa")
  EXPECT_EQ(family, 0x19);
  EXPECT_EQ(model, 0x11);
  decode_family_model(0x00B00F21u, &family, &model);  // Zen 5
  EXPECT_EQ(family, 0x1A);
  EXPECT_EQ(model, 0x02);
  decode_family_model(0x000806F8u, &family, &model);  // Xeon 4th gen (Sapphire Rapids)
  EXPECT_EQ(family, 6);
  EXPECT_EQ(model, 0x8F);
  decode_family_model(0x00000543u, &family, &model);  // family 5: no extended fields
  EXPECT_EQ(family, 5);
  EXPECT_EQ(model, 4);
}

TEST(CpuCapsDetect, FamilyAgreesWithProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  int family = -1;
  while (std::getline(in, line))
    if (line.rfind("cpu family", 0) == 0) {
      family = std::stoi(line.substr(line.find(':') + 1));
      break;
    }
  if (family < 0) GTEST_SKIP() << "/proc/cpuinfo has no cpu family line (not Linux x86?)";
  EXPECT_EQ(cpu_caps().family, family);
}

TEST(GemvPrefetch, L2OnZen3And4ElseL1) {
  CpuCaps c;
  c.vendor = "AuthenticAMD";
  c.family = 0x19;
  EXPECT_EQ(default_gemv_prefetch(c), PrefetchLevel::kL2);
  c.family = 0x1A;  // Zen 5: measured faster with L1
  EXPECT_EQ(default_gemv_prefetch(c), PrefetchLevel::kL1);
  c.vendor = "GenuineIntel";
  c.family = 6;
  EXPECT_EQ(default_gemv_prefetch(c), PrefetchLevel::kL1);
  EXPECT_EQ(prefetch_level_name(PrefetchLevel::kL2), "L2");
}

TEST(GemvStreams, OneOnAmdFamily19hElseFour) {
  CpuCaps c;
  c.vendor = "AuthenticAMD";
  c.family = 0x19;
  EXPECT_EQ(default_gemv_streams(c), 1);
  c.family = 0x1A;  // Zen 5: measured with four
  EXPECT_EQ(default_gemv_streams(c), 4);
  c.vendor = "GenuineIntel";
  c.family = 6;
  EXPECT_EQ(default_gemv_streams(c), 4);
  EXPECT_THROW(set_gemv_streams(2), Error);
}

TEST(GemvQ8_0, FourStreamsToL1OnZen3Only) {
  CpuCaps c;
  c.vendor = "AuthenticAMD";
  c.family = 0x19;
  for (int zen3 : {0x01, 0x08, 0x21, 0x44, 0x50}) {  // Milan, Chagall, Vermeer, Rembrandt, Cezanne
    c.model_number = zen3;
    EXPECT_TRUE(default_gemv_q8_0_four_l1(c)) << std::hex << zen3;
  }
  for (int zen4 : {0x11, 0x18, 0x61, 0x74, 0xA0}) {  // Genoa, Storm Peak, Raphael, Phoenix, Siena
    c.model_number = zen4;
    EXPECT_FALSE(default_gemv_q8_0_four_l1(c)) << std::hex << zen4;
  }
  c.family = 0x1A;  // Zen 5
  c.model_number = 0x02;
  EXPECT_FALSE(default_gemv_q8_0_four_l1(c));
  c.vendor = "GenuineIntel";
  c.family = 6;
  c.model_number = 0x01;
  EXPECT_FALSE(default_gemv_q8_0_four_l1(c));
}

TEST(CpuCapsTiers, NamesRoundTrip) {
  for (int i = 0; i < kTierCount; ++i) {
    const Tier t = static_cast<Tier>(i);
    EXPECT_EQ(tier_from_name(tier_name(t)), t);
  }
  EXPECT_EQ(tier_name(Tier::amx_emu), "amx-emu");
  EXPECT_EQ(tier_from_name("amx_emu"), Tier::amx_emu);
  EXPECT_EQ(tier_from_name("auto"), std::nullopt);  // resolve_tier handles auto
  EXPECT_EQ(tier_from_name("AVX2"), std::nullopt);
  EXPECT_EQ(tier_from_name(""), std::nullopt);
}

TEST(CpuCapsTiers, BareCpuHasOnlyPortableTiers) {
  const CpuCaps c;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::ref), "");
  EXPECT_EQ(c.tier_unavailable_reason(Tier::amx_emu), "");
  EXPECT_EQ(c.tier_unavailable_reason(Tier::avx2), "CPU lacks AVX2");
  EXPECT_EQ(c.tier_unavailable_reason(Tier::avx512), "CPU lacks AVX2");
  EXPECT_EQ(c.tier_unavailable_reason(Tier::amx), "CPU lacks AMX-TILE/AMX-INT8");
  EXPECT_EQ(c.best_tier(), Tier::ref);
}

TEST(CpuCapsTiers, EachMissingPieceIsNamed) {
  CpuCaps c = avx2_machine();
  EXPECT_EQ(c.best_tier(), Tier::avx2);
  c.fma = false;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::avx2), "CPU lacks FMA");
  c = avx2_machine();
  c.f16c = false;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::avx2), "CPU lacks F16C");
  c = avx2_machine();
  c.os_avx = false;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::avx2), "OS has not enabled AVX state (XCR0)");
  EXPECT_EQ(c.best_tier(), Tier::ref);

  c = avx2_machine();
  c.avx512f = c.avx512bw = c.avx512vl = c.avx512dq = true;  // Skylake-X: no VNNI
  c.os_avx512 = true;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::avx512), "CPU lacks AVX-512 VNNI");
  EXPECT_EQ(c.best_tier(), Tier::avx2);

  c = avx512_machine();
  EXPECT_EQ(c.best_tier(), Tier::avx512);
  c.avx512bw = false;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::avx512), "CPU lacks AVX-512 BW");
  c = avx512_machine();
  c.os_avx512 = false;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::avx512), "OS has not enabled AVX-512 state (XCR0)");
  EXPECT_EQ(c.best_tier(), Tier::avx2);
}

TEST(CpuCapsTiers, AmxNeedsCpuOsPermissionAndTheAvx512Tier) {
  CpuCaps c = amx_machine();
  EXPECT_EQ(c.tier_unavailable_reason(Tier::amx), "");
  EXPECT_EQ(c.best_tier(), Tier::amx);

  c.amx_int8 = false;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::amx), "CPU lacks AMX-TILE/AMX-INT8");
  EXPECT_EQ(c.best_tier(), Tier::avx512);

  c = amx_machine();
  c.os_amx = false;
  c.amx_permission = nullptr;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::amx),
            "OS has not enabled AMX tile state (XCR0 bits 17-18)");

  c = amx_machine();
  c.amx_permission = &refused_permission();
  EXPECT_EQ(c.tier_unavailable_reason(Tier::amx),
            "AMX-TILE present but the kernel refused XTILEDATA permission (arch_prctl: "
            "Operation not permitted)");
  EXPECT_EQ(c.best_tier(), Tier::avx512);
  c.amx_permission = nullptr;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::amx), "AMX-TILE present but no XTILEDATA permission");

  c = amx_machine();
  c.avx512vnni = false;
  EXPECT_EQ(c.tier_unavailable_reason(Tier::amx),
            "the amx tier also needs the avx512 tier: CPU lacks AVX-512 VNNI");
  EXPECT_EQ(c.best_tier(), Tier::avx2);
}

// ----------------------------------------------------------------------------------------------
// --kernels / XTILE_KERNELS

TEST(CpuCapsResolve, AutoAndEmptyGiveTheBestTier) {
  ScopedEnv env("XTILE_KERNELS", nullptr);
  EXPECT_EQ(resolve_tier(avx512_machine(), "auto"), Tier::avx512);
  EXPECT_EQ(resolve_tier(avx512_machine(), ""), Tier::avx512);
  EXPECT_EQ(resolve_tier(amx_machine(), "auto"), Tier::amx);
  EXPECT_EQ(resolve_tier(CpuCaps{}, "auto"), Tier::ref);
  EXPECT_EQ(resolve_tier(cpu_caps(), "auto"), cpu_caps().best_tier());
}

TEST(CpuCapsResolve, EachAvailableNameResolvesToItsTier) {
  ScopedEnv env("XTILE_KERNELS", nullptr);
  const CpuCaps c = amx_machine();
  EXPECT_EQ(resolve_tier(c, "ref"), Tier::ref);
  EXPECT_EQ(resolve_tier(c, "avx2"), Tier::avx2);
  EXPECT_EQ(resolve_tier(c, "avx512"), Tier::avx512);
  EXPECT_EQ(resolve_tier(c, "amx"), Tier::amx);
  EXPECT_EQ(resolve_tier(c, "amx-emu"), Tier::amx_emu);
  EXPECT_EQ(resolve_tier(c, "amx_emu"), Tier::amx_emu);
  // On this machine: a tier resolves exactly when it is available, else the error gives the reason.
  for (int i = 0; i < kTierCount; ++i) {
    const Tier t = static_cast<Tier>(i);
    const std::string reason = cpu_caps().tier_unavailable_reason(t);
    if (reason.empty()) {
      EXPECT_EQ(resolve_tier(cpu_caps(), tier_name(t)), t);
    } else {
      EXPECT_EQ(
          resolve_error(cpu_caps(), tier_name(t)),
          "tier '" + std::string(tier_name(t)) + "' is not available on this machine: " + reason);
    }
  }
}

TEST(CpuCapsResolve, UnavailableTierErrorCarriesTheReason) {
  ScopedEnv env("XTILE_KERNELS", nullptr);
  EXPECT_EQ(resolve_error(avx512_machine(), "amx"),
            "tier 'amx' is not available on this machine: CPU lacks AMX-TILE/AMX-INT8");
  EXPECT_EQ(resolve_error(avx2_machine(), "avx512"),
            "tier 'avx512' is not available on this machine: CPU lacks AVX-512 F");
  static const AmxPermission invalid([](std::string* error) {
    *error = "Invalid argument";
    return false;
  });
  CpuCaps denied = amx_machine();
  denied.amx_permission = &invalid;
  EXPECT_TRUE(contains(resolve_error(denied, "amx"),
                       "refused XTILEDATA permission (arch_prctl: "
                       "Invalid argument)"));
}

// ----------------------------------------------------------------------------------------------
// AMX permission: asked the first time the amx tier is considered, never for another tier

TEST(CpuCapsAmxPermission, IsRequestedOnlyWhenTheAmxTierIsConsideredAndOnce) {
  ScopedEnv env("XTILE_KERNELS", nullptr);
  static std::atomic<int> calls{0};  // a capture-less lambda (AmxPermission::Request) counts here
  calls = 0;
  const AmxPermission permission([](std::string*) {
    ++calls;
    return true;
  });
  CpuCaps c = amx_machine();
  c.amx_permission = &permission;
  // Choosing and checking any other tier leaves the process as it was.
  EXPECT_EQ(resolve_tier(c, "avx2"), Tier::avx2);
  EXPECT_EQ(resolve_tier(c, "avx512"), Tier::avx512);
  EXPECT_EQ(resolve_tier(c, "ref"), Tier::ref);
  EXPECT_EQ(resolve_tier(c, "amx-emu"), Tier::amx_emu);
  for (Tier t : {Tier::ref, Tier::avx2, Tier::avx512, Tier::amx_emu})
    EXPECT_TRUE(c.tier_available(t));
  EXPECT_EQ(permission.requests(), 0);
  EXPECT_EQ(calls, 0);
  // A CPU or OS without tiles never asks, even for the amx tier.
  CpuCaps no_os = c;
  no_os.os_amx = false;
  EXPECT_FALSE(no_os.tier_available(Tier::amx));
  EXPECT_EQ(permission.requests(), 0);
  // The amx tier asks, once.
  EXPECT_EQ(resolve_tier(c, "amx"), Tier::amx);
  EXPECT_EQ(permission.requests(), 1);
  EXPECT_EQ(resolve_tier(c, "auto"), Tier::amx);
  EXPECT_EQ(c.best_tier(), Tier::amx);
  EXPECT_EQ(calls, 1);
}

TEST(CpuCapsAmxPermission, DetectionAndTheThreadPoolDoNotRequestIt) {
  // cpu_caps() points at the process's permission instead of asking (the pool reads
  // logical_cpus from it); asking is the amx tier's business.
  const int before = process_amx_permission().requests();
  const CpuCaps& c = cpu_caps();
  {
    ThreadPool pool(4);
    pool.run([](int, int) {});
  }
  EXPECT_EQ(resolve_tier(c, "ref"), Tier::ref);
  EXPECT_EQ(process_amx_permission().requests(), before);
  EXPECT_EQ(c.amx_permission, &process_amx_permission());
#if defined(__linux__)
  // What the kernel says: without a request by someone, XTILEDATA is not in the granted mask.
  // (Other tests in this process may have selected amx on an AMX machine; then skip.)
  if (before == 0) {
    uint64_t mask = 0;
    constexpr int kArchGetXcompPerm = 0x1022;
    if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &mask) == 0) {
      EXPECT_EQ(mask & (uint64_t{1} << 18), 0u) << "XTILEDATA was granted without the amx tier";
    }
  }
#endif
}

TEST(CpuCapsResolve, UnknownNameListsTheValidOnes) {
  ScopedEnv env("XTILE_KERNELS", nullptr);
  const std::string err = resolve_error(amx_machine(), "avx3");
  EXPECT_TRUE(contains(err, "'avx3'")) << err;
  EXPECT_TRUE(contains(err, "auto, ref, avx2, avx512, amx, amx-emu")) << err;
  EXPECT_TRUE(contains(err, "--kernels")) << err;
}

TEST(CpuCapsResolve, EnvironmentIsUsedWhenTheFlagIsEmptyAndTheFlagWins) {
  const CpuCaps c = avx512_machine();
  {
    ScopedEnv env("XTILE_KERNELS", "ref");
    EXPECT_EQ(resolve_tier(c, ""), Tier::ref);
    EXPECT_EQ(resolve_tier(c, "avx2"), Tier::avx2);
    EXPECT_EQ(resolve_tier(c, "auto"), Tier::avx512);  // an explicit flag, even auto, wins
  }
  {
    ScopedEnv env("XTILE_KERNELS", "amx-emu");
    EXPECT_EQ(resolve_tier(c, ""), Tier::amx_emu);
  }
  {
    ScopedEnv env("XTILE_KERNELS", "");
    EXPECT_EQ(resolve_tier(c, ""), Tier::avx512);
  }
  {
    ScopedEnv env("XTILE_KERNELS", "bogus");
    const std::string err = resolve_error(c, "");
    EXPECT_TRUE(contains(err, "'bogus'") && contains(err, "XTILE_KERNELS")) << err;
    EXPECT_EQ(resolve_tier(c, "ref"), Tier::ref);  // the flag wins over a bad variable too
  }
  {
    ScopedEnv env("XTILE_KERNELS", "amx");
    EXPECT_EQ(resolve_error(c, ""),
              "tier 'amx' is not available on this machine: CPU lacks AMX-TILE/AMX-INT8");
  }
}

}  // namespace cpu_caps_test
}  // namespace
}  // namespace xtile
