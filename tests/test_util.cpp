#include "test_util.h"

#include <random>

#include <array>
#include <cstdio>
#include <sys/wait.h>
#include <unistd.h>

namespace xtile::test {

std::string fixture_path(const std::string& rel) {
  std::filesystem::path p = std::filesystem::path(XTILE_SHARED_DIR) / "fixtures" / rel;
  return std::filesystem::exists(p) ? p.string() : std::string();
}

std::filesystem::path temp_path(const std::string& name) {
  static const std::filesystem::path dir = [] {
    std::filesystem::path d =
        std::filesystem::temp_directory_path() / ("xtile-test-" + std::to_string(::getpid()));
    // ctest runs every test in a process of its own, so PIDs come round again: what an earlier
    // process with this PID left (a FIFO, a file a test expects not to exist) is removed first.
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir / name;
}

std::string xtile_binary() { return std::string(XTILE_BINARY_DIR) + "/xtile"; }

int run_command(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = ::pclose(pipe);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<float> random_normal(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace xtile::test
