// The two builds of the amx kernel source, checked in the object files themselves: the
// intrinsics build (xtile_tier_amx) must really contain the tile instructions (no AMX here to
// run it, so this is the check that the HW back-end is what gets compiled), and the emulator
// build (xtile_tier_amx_emu) must contain neither tile instructions nor AVX-512/AVX registers,
// since the amx-emu tier has to run on any x86-64 CPU.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"

namespace xtile {
namespace {
namespace amx_objdump_test {  // unity batches: CMakeLists.txt

namespace fs = std::filesystem;

// Object files of a CMake object library built from src/kernels/amx/*.cpp.
std::vector<fs::path> amx_objects(const std::string& target) {
  std::vector<fs::path> out;
  const fs::path dir =
      fs::path(XTILE_BINARY_DIR) / "CMakeFiles" / (target + ".dir") / "src" / "kernels" / "amx";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".o") out.push_back(e.path());
  return out;
}

bool have_objdump() {
  std::string out;
  return test::run_command("objdump --version", &out) == 0;
}

// The disassembly of all the target's objects, one string.
std::string disassemble(const std::vector<fs::path>& objects) {
  std::string all;
  for (const fs::path& o : objects) {
    std::string out;
    EXPECT_EQ(0, test::run_command("objdump -d --no-show-raw-insn '" + o.string() + "'", &out))
        << out;
    all += out;
  }
  return all;
}

bool contains_mnemonic(const std::string& text, const std::string& mnemonic) {
  // objdump puts a tab before the mnemonic.
  return text.find("\t" + mnemonic + " ") != std::string::npos ||
         text.find("\t" + mnemonic + "\n") != std::string::npos;
}

TEST(AmxObjdump, IntrinsicsBuildContainsTheTileInstructions) {
  if (!have_objdump()) GTEST_SKIP() << "objdump not found (binutils): cannot inspect the objects";
  const std::vector<fs::path> objects = amx_objects("xtile_tier_amx");
  ASSERT_FALSE(objects.empty()) << "no objects under " << XTILE_BINARY_DIR
                                << "/CMakeFiles/xtile_tier_amx.dir/src/kernels/amx";
  const std::string text = disassemble(objects);
  for (const char* m :
       {"ldtilecfg", "tileloadd", "tdpbssd", "tilestored", "tilezero", "tilerelease", "vcvtdq2ps"})
    EXPECT_TRUE(contains_mnemonic(text, m)) << m << " missing from the AMX build";
  // The epilogue is AVX-512: 16-lane conversions and FMAs on zmm registers.
  EXPECT_NE(text.find("%zmm"), std::string::npos) << "no AVX-512 epilogue in the AMX build";
}

TEST(AmxObjdump, EmulatorBuildIsPlainX86_64) {
  if (!have_objdump()) GTEST_SKIP() << "objdump not found (binutils): cannot inspect the objects";
  const std::vector<fs::path> objects = amx_objects("xtile_tier_amx_emu");
  ASSERT_FALSE(objects.empty()) << "no objects under " << XTILE_BINARY_DIR
                                << "/CMakeFiles/xtile_tier_amx_emu.dir/src/kernels/amx";
  const std::string text = disassemble(objects);
  for (const char* m :
       {"ldtilecfg", "tileloadd", "tdpbssd", "tilestored", "tilezero", "tilerelease"})
    EXPECT_FALSE(contains_mnemonic(text, m)) << m << " in the emulator build";
  EXPECT_EQ(text.find("%zmm"), std::string::npos) << "AVX-512 register in the emulator build";
  EXPECT_EQ(text.find("%ymm"), std::string::npos) << "AVX register in the emulator build";
  EXPECT_EQ(text.find("%tmm"), std::string::npos) << "tile register in the emulator build";
}

}  // namespace amx_objdump_test
}  // namespace
}  // namespace xtile
