// The compile-time float guards (src/base/float_contract.h) protect only the translation units
// that see them: the build force-includes the header into every one (CMakeLists.txt), and this
// checks the compile commands the build used. (The base headers include it too, for other
// build systems. The guards themselves are tested by compiling tests/float_contract_probe.cpp
// with each forbidden flag: the FloatContract.Rejects* CTest cases.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace xtile {
namespace {
namespace float_contract_test {  // unity batches: CMakeLists.txt

namespace fs = std::filesystem;

TEST(FloatContract, EveryCoreSourceIsCompiledWithTheGuards) {
  const fs::path db = fs::path(XTILE_BINARY_DIR) / "compile_commands.json";
  if (!fs::exists(db)) GTEST_SKIP() << db << " is absent (not built by this project's CMake)";
  std::ifstream in(db);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string json = ss.str();
  // CMake writes "command" then "file" for each entry.
  static const std::regex entry(
      R"re("command": "((?:[^"\\]|\\.)*)",\s*"file": "((?:[^"\\]|\\.)*)")re");
  const std::string src = (fs::path(XTILE_SOURCE_DIR) / "src").lexically_normal().string() + "/";
  int sources = 0;
  for (auto it = std::sregex_iterator(json.begin(), json.end(), entry);
       it != std::sregex_iterator(); ++it) {
    const std::string command = (*it)[1].str(), file = (*it)[2].str();
    if (file.rfind(src, 0) != 0) continue;
    ++sources;
    EXPECT_NE(command.find("-include " + src + "base/float_contract.h"), std::string::npos)
        << file << " is compiled without the float guards: " << command;
  }
  EXPECT_GT(sources, 40) << "too few src/ entries in " << db;
}

}  // namespace float_contract_test
}  // namespace
}  // namespace xtile
