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

namespace fs = std::filesystem;

TEST(TierSymbols, TierObjectsDefineNoWeakCode) {
  std::string out;
  if (test::run_command("nm --version", &out) != 0) GTEST_SKIP() << "nm (binutils) not found";
  int objects = 0;
  for (const char* target :
       {"xtile_tier_avx2", "xtile_isa_f16c", "xtile_tier_avx512", "xtile_tier_amx"}) {
    const fs::path dir = fs::path(XTILE_BINARY_DIR) / "CMakeFiles" / (std::string(target) + ".dir");
    if (!fs::exists(dir)) continue;
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
  }
  if (objects == 0) GTEST_SKIP() << "no tier objects under " << XTILE_BINARY_DIR;
}

}  // namespace
}  // namespace xtile
