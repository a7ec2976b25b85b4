// The machine's ceilings (kernels/probes.h): the read probe's buffer must not be mergeable by the
// host, and the probes return plausible positive figures on any CPU.
#include "kernels/probes.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

namespace xtile {
namespace {
namespace probes_test {  // unity batches: CMakeLists.txt

// Same-page merging (KSM under a VM) folds identical pages into one, and a probe reading them
// measures a cache, not memory: every 4 KiB page of the buffer must differ from every other.
TEST(ProbesTest, ReadProbeBufferPagesAllDiffer) {
  constexpr size_t kPage = 4096, kPages = 2048;  // 8 MiB
  const AlignedBuffer buf = make_read_probe_buffer(kPage * kPages);
  ASSERT_EQ(buf.size(), kPage * kPages);
  std::set<std::string> pages;
  for (size_t p = 0; p < kPages; ++p)
    pages.emplace(reinterpret_cast<const char*>(buf.data()) + p * kPage, kPage);
  EXPECT_EQ(pages.size(), kPages);
  // Not a page of zeros either (the kernel's shared zero page).
  const std::string zeros(kPage, '\0');
  EXPECT_EQ(pages.count(zeros), 0u);
}

TEST(ProbesTest, ReadBandwidthIsPositiveAndFinite) {
  ThreadPool pool(2);
  const AlignedBuffer buf = make_read_probe_buffer(size_t{16} << 20);
  const double bytes_per_s = measure_read_bandwidth(pool, buf, 2);
  EXPECT_GT(bytes_per_s, 1e8);   // 0.1 GB/s: any machine that runs the suite reads faster
  EXPECT_LT(bytes_per_s, 1e14);  // 100 TB/s: no cache reads that fast
}

}  // namespace probes_test
}  // namespace
}  // namespace xtile
