// Repacked weights replace the mapped bytes instead of doubling them: the resident size after
// loading a synthetic qwen3-1.7b Q4_0 is within 15 % of the file size (issue acceptance).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "model/synth.h"
#include "model/weights.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace load_rss_test {  // unity batches: CMakeLists.txt

// VmRSS of this process, bytes.
size_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      size_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    std::getline(status, key);
  }
  return 0;
}

TEST(LoadRss, Qwen3_1_7bQ4_0ResidentSizeIsAboutTheFileSize) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's shadow memory adds to the resident size; runs in the "
                  "plain build";
#endif
  if (resident_bytes() == 0) GTEST_SKIP() << "no /proc/self/status VmRSS on this system";
  const std::string path = test::temp_path("rss-qwen3-1.7b-q4_0.gguf").string();
  synth::Options o;
  o.preset = "qwen3-1.7b";
  o.type = GgmlType::Q4_0;
  o.threads = 2;
  synth::write_model(o, path);
  const double file = static_cast<double>(std::filesystem::file_size(path));
  {
    ThreadPool pool(2);
    const size_t before = resident_bytes();
    LoadOptions lo;
    lo.tier = Tier::amx_emu;  // the x16 layout every SIMD tier uses; runs on any CPU
    const auto store = WeightStore::load(path, pool, lo);
    const double grown = static_cast<double>(resident_bytes() - before);
    EXPECT_LT(grown, 1.15 * file) << "resident growth " << grown << " bytes for a " << file
                                  << "-byte file";
    EXPECT_GT(grown, 0.85 * file) << "the packed weights should be resident after load";
  }
  std::filesystem::remove(path);
}

}  // namespace load_rss_test
}  // namespace
}  // namespace xtile
