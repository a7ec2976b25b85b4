// One binary runs on any x86-64 CPU only if no code compiled with a tier's ISA flags can be
// reached from portable code. Inline functions and templates instantiated in a tier's
// translation unit become weak symbols the linker may pick for every caller, so the tier
// objects must define none (the C++ personality reference is data, not code).
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "test_util.h"

namespace xtile {
namespace {
namespace tier_symbols_test {  // unity batches: CMakeLists.txt

namespace fs = std::filesystem;

// The object libraries built with ISA flags beyond the baseline (CMakeLists.txt).
class TierSymbolsTest : public ::testing::TestWithParam<const char*> {};

TEST_P(TierSymbolsTest, ObjectsDefineNoWeakCode) {
  const std::string target = GetParam();
  std::string out;
  if (test::run_command("nm --version", &out) != 0) GTEST_SKIP() << "nm (binutils) not found";
  const fs::path dir = fs::path(XTILE_BINARY_DIR) / "CMakeFiles" / (target + ".dir");
  if (!fs::exists(dir))
    GTEST_SKIP() << "no objects of " << target << " under " << dir
                 << " (built by another build system?)";
  int objects = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().extension() != ".o") continue;
    ++objects;
    ASSERT_EQ(0, test::run_command("nm -C --defined-only '" + entry.path().string() + "'", &out));
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
      // "<address> <kind> <name>": W/V weak, u unique global.
      if (line.size() < 19) continue;
      const char kind = line[17];
      if ((kind == 'W' || kind == 'V' || kind == 'u') &&
          line.find("DW.ref.__gxx_personality_v0") == std::string::npos)
        ADD_FAILURE() << entry.path().filename() << " defines a weak symbol: " << line;
    }
  }
  EXPECT_GT(objects, 0) << dir << " exists but holds no object files";
}

INSTANTIATE_TEST_SUITE_P(IsaObjects, TierSymbolsTest,
                         ::testing::Values("xtile_tier_avx2", "xtile_isa_f16c", "xtile_tier_avx512",
                                           "xtile_tier_amx"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace tier_symbols_test
}  // namespace
}  // namespace xtile
