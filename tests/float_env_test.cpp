// The float contract's run-time side (base/float_env.h, ops/tier_self_check.h): a host that set
// FTZ/DAZ or another rounding mode in MXCSR (crtfastmath does at load) gets the contract's bits
// anyway and its own MXCSR back; pool threads never inherit a host's MXCSR; the start-up
// self-check passes on every tier here and names a kernel that differs from ref.
#include "base/float_env.h"

#include <gtest/gtest.h>
#include <xmmintrin.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "base/error.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "kernels/registry.h"
#include "model/session.h"
#include "model/synth.h"
#include "model/weights.h"
#include "ops/tier_self_check.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace float_env_test {  // unity batches: CMakeLists.txt

// What a host built with -ffast-math leaves behind, plus a rounding mode of its own.
constexpr uint32_t kHostMxcsr = 0x1f80u | kMxcsrFtz | kMxcsrDaz | (3u << 13);  // toward zero

// Sets the calling thread's MXCSR for the scope, restores the default after.
class HostMxcsr {
 public:
  explicit HostMxcsr(uint32_t mxcsr) : saved_(_mm_getcsr()) { _mm_setcsr(mxcsr); }
  ~HostMxcsr() { _mm_setcsr(saved_); }

 private:
  uint32_t saved_;
};

uint32_t control_bits(uint32_t mxcsr) {
  return mxcsr & ~0x3fu;  // without the sticky exception flags
}

// 2^-130 * 2^-3: a denormal result, which FTZ flushes to zero.
float denormal_product() {
  volatile float a = 0x1p-130f, b = 0x1p-3f;
  return a * b;
}

TEST(FloatEnv, ProblemsAreNamed) {
  EXPECT_EQ(float_env_problem(0x1f80u), "");
  EXPECT_EQ(float_env_problem(0x1f80u | kMxcsrFtz), "FTZ (flush to zero) is set");
  EXPECT_EQ(float_env_problem(kHostMxcsr),
            "FTZ (flush to zero) is set, DAZ (denormals are zero) is set, rounding is toward zero");
  EXPECT_EQ(float_env_problem(0x1f80u | (1u << 13)), "rounding is toward -inf");
  EXPECT_EQ(float_env_problem(0x1f80u & ~(1u << 7)), "floating-point exceptions are unmasked");
  EXPECT_EQ(contract_mxcsr(kHostMxcsr | 0x21u), 0x1f80u | 0x21u) << "flags are kept";
}

TEST(FloatEnv, CheckThrowsNamingTheProblem) {
  EXPECT_NO_THROW(check_float_env("test"));
  HostMxcsr host(0x1f80u | kMxcsrDaz);
  try {
    check_float_env("Session::eval");
    FAIL() << "DAZ set, no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "Session::eval: the floating-point environment (MXCSR 0x1fc0) breaks the float "
              "contract: DAZ (denormals are zero) is set");
  }
}

TEST(FloatEnv, ScopeSetsTheContractAndRestoresTheCaller) {
  HostMxcsr host(kHostMxcsr);
  EXPECT_EQ(denormal_product(), 0.0f) << "FTZ should flush the product here";
  {
    ContractFloatEnv env;
    EXPECT_EQ(float_env_problem(_mm_getcsr()), "");
    EXPECT_EQ(denormal_product(), 0x1p-133f);
  }
  EXPECT_EQ(control_bits(_mm_getcsr()), control_bits(kHostMxcsr));
}

TEST(FloatEnv, PoolThreadsRunUnderTheContractWhateverTheirCreatorSet) {
  HostMxcsr host(kHostMxcsr);
  ThreadPool pool(3);  // the workers inherit kHostMxcsr from this thread
  std::vector<uint32_t> seen(3, 0);
  std::vector<float> products(3, 0.0f);
  pool.run([&](int t, int) {
    seen[static_cast<size_t>(t)] = _mm_getcsr();
    products[static_cast<size_t>(t)] = denormal_product();
  });
  for (int t = 0; t < 3; ++t) {
    EXPECT_EQ(float_env_problem(seen[static_cast<size_t>(t)]), "") << "thread " << t;
    EXPECT_EQ(products[static_cast<size_t>(t)], 0x1p-133f) << "thread " << t;
  }
  // A single-grain parallel_for runs on the caller directly: under the contract too.
  uint32_t direct = 0;
  pool.parallel_for(0, 1, 1, [&](int64_t, int64_t, int) { direct = _mm_getcsr(); });
  EXPECT_EQ(float_env_problem(direct), "");
  EXPECT_EQ(control_bits(_mm_getcsr()), control_bits(kHostMxcsr)) << "the caller's is restored";
}

std::string tiny_model() {
  const std::string path = test::temp_path("float-env-tiny-qwen3-q4_0.gguf").string();
  static std::once_flag once;
  std::call_once(once, [&] {
    synth::Options o;
    o.preset = "tiny-qwen3";
    o.type = GgmlType::Q4_0;
    o.seed = 3;
    synth::write_model(o, path);
  });
  return path;
}

std::vector<float> eval_prompt(const std::string& path, Tier tier) {
  ThreadPool pool(2);  // created here: inherits whatever this thread's MXCSR is
  LoadOptions lo;
  lo.tier = tier;
  auto w = WeightStore::load(path, pool, lo);
  Session s(*w, pool, SessionOptions{64, 512, KvType::f16});
  std::vector<int32_t> prompt;
  for (int i = 0; i < 12; ++i) prompt.push_back((i * 41 + 5) % 400);
  std::vector<float> logits;
  s.eval(prompt, true, &logits);
  return logits;
}

TEST(FloatEnv, SessionUnderAHostsFtzDazAndRoundingGivesTheContractsBitsAndRestoresMxcsr) {
  const std::string path = tiny_model();
  for (Tier tier : {Tier::ref, cpu_caps().best_tier()}) {
    const std::vector<float> want = eval_prompt(path, tier);
    std::vector<float> got;
    {
      HostMxcsr host(kHostMxcsr);
      ASSERT_NO_THROW(got = eval_prompt(path, tier)) << tier_name(tier);
      EXPECT_EQ(control_bits(_mm_getcsr()), control_bits(kHostMxcsr)) << "MXCSR not restored";
    }
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
        << tier_name(tier) << ": the logits changed under the host's MXCSR";
  }
}

TEST(TierSelfCheck, EveryAvailableTierPasses) {
  ThreadPool pool(2);
  for (int i = 0; i < kTierCount; ++i) {
    const Tier tier = static_cast<Tier>(i);
    if (!cpu_caps().tier_available(tier)) continue;
    for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0})
      EXPECT_NO_THROW(self_check_kernels(pool, select_kernels(tier, type)))
          << tier_name(tier) << " " << ggml_type_name(type);
    EXPECT_NO_THROW(self_check_tier_once(pool, tier));
  }
}

// ref's Q8_0 GEMV with the last bit of one output flipped: what a fused multiply-add in a
// miscompiled kernel looks like from outside.
const MatmulKernel* g_ref_gemv = nullptr;
void off_by_one_ulp(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy,
                    int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  g_ref_gemv->fn(w, x, y, ldy, m0, m1, n0, n1);
  if (m0 == 0 && n0 <= 7 && 7 < n1) {
    uint32_t bits;
    std::memcpy(&bits, &y[7], 4);
    bits ^= 1u;
    std::memcpy(&y[7], &bits, 4);
  }
}

TEST(TierSelfCheck, AKernelThatDiffersFromRefIsAnErrorNamingIt) {
  ThreadPool pool(2);
  KernelSet ks = select_kernels(Tier::ref, GgmlType::Q8_0);
  g_ref_gemv = ks.gemv;
  MatmulKernel broken = *ks.gemv;
  broken.name = "q8_0_gemv_broken";
  broken.fn = &off_by_one_ulp;
  ks.gemv = &broken;
  ks.tier = Tier::avx2;  // as if it were another tier's
  try {
    self_check_kernels(pool, ks);
    FAIL() << "a kernel one ulp off ref passed the self-check";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("kernel self-check failed: tier avx2, q8_0 kernel q8_0_gemv_broken (M = 1"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("at row 0, column 7"), std::string::npos) << msg;
    EXPECT_NE(msg.find("-ffp-contract=fast"), std::string::npos) << msg;
  }
}

}  // namespace float_env_test
}  // namespace
}  // namespace xtile
