// Helpers shared by the tests: fixture paths, temporary files, seeded random data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace xtile::test {

// ../shared/fixtures/<rel>, or "" when the shared folder is absent (callers GTEST_SKIP with a reason).
std::string fixture_path(const std::string& rel);

// A path in this process's temporary folder (/tmp/xtile-test-PID, emptied at the first call:
// PIDs are reused); the folder is left for the OS/tmp cleanup.
std::filesystem::path temp_path(const std::string& name);

// Path of the built xtile CLI.
std::string xtile_binary();

// Runs a shell command, returns its exit status and fills `output` with stdout+stderr.
int run_command(const std::string& cmd, std::string* output);

// n normal floats of standard deviation `scale`, from a seeded generator (reproducible).
std::vector<float> random_normal(size_t n, uint32_t seed, float scale = 1.0f);

}  // namespace xtile::test

#define XTILE_REQUIRE_FIXTURE(var, rel)                                              \
  const std::string var = ::xtile::test::fixture_path(rel);                          \
  if (var.empty()) GTEST_SKIP() << "../shared/fixtures/" << (rel)                     \
                                << " is absent (no ../shared beside the checkout)"
