// Thread placement lists (--cpu-mask, --numa): parsing, the NUMA topology from a sysfs-like
// folder, the per-thread CPU lists of each mode, and pinning the calling thread.
#include "cpu/affinity.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace affinity_test {  // unity batches: CMakeLists.txt

using V = std::vector<int>;

std::string error_of(auto&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Affinity, ParsesHexMasks) {
  EXPECT_EQ(parse_cpu_mask("1"), V({0}));
  EXPECT_EQ(parse_cpu_mask("0x0f"), V({0, 1, 2, 3}));
  EXPECT_EQ(parse_cpu_mask("F0"), V({4, 5, 6, 7}));
  EXPECT_EQ(parse_cpu_mask("0X100000001"), V({0, 32}));
  EXPECT_EQ(error_of([] { parse_cpu_mask("0x"); }), "CPU mask '0x' has no hex digits");
  EXPECT_EQ(error_of([] { parse_cpu_mask("0xg1"); }), "CPU mask '0xg1' is not hexadecimal");
  EXPECT_EQ(error_of([] { parse_cpu_mask("000"); }), "CPU mask '000' selects no CPU");
}

TEST(Affinity, ParsesCpuLists) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11\n"), V({0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list("5"), V({5}));
  EXPECT_EQ(parse_cpu_list(""), V({}));
  EXPECT_EQ(parse_cpu_list("3,1-2,2"), V({1, 2, 3}));
  EXPECT_EQ(error_of([] { parse_cpu_list("1-x"); }), "CPU list '1-x': 'x' is not a CPU number");
  EXPECT_EQ(error_of([] { parse_cpu_list("4-2"); }), "CPU list '4-2': range '4-2' is backwards");
}

// Two sockets of 4 CPUs each (0-3 and 4-7), as sysfs describes them.
std::vector<NumaNode> two_nodes() {
  return {NumaNode{0, {0, 1, 2, 3}}, NumaNode{1, {4, 5, 6, 7}}};
}
const V kAll = {0, 1, 2, 3, 4, 5, 6, 7};

TEST(Affinity, DistributeSplitsThreadsIntoOneContiguousBlockPerNode) {
  EXPECT_EQ(numa_cpus("distribute", 8, two_nodes(), kAll, 0), V({0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(numa_cpus("distribute", 4, two_nodes(), kAll, 0), V({0, 1, 4, 5}));
  EXPECT_EQ(numa_cpus("distribute", 5, two_nodes(), kAll, 0), V({0, 1, 2, 4, 5}));
  // More threads than CPUs: each node's CPUs are reused in order.
  EXPECT_EQ(numa_cpus("distribute", 12, two_nodes(), kAll, 1),
            V({0, 1, 2, 3, 0, 1, 4, 5, 6, 7, 4, 5}));
  // Only the allowed CPUs count; a node without any is skipped.
  EXPECT_EQ(numa_cpus("distribute", 4, two_nodes(), V({2, 3}), 0), V({2, 3, 2, 3}));
}

TEST(Affinity, IsolateAndNumactl) {
  EXPECT_EQ(numa_cpus("isolate", 3, two_nodes(), kAll, 1), V({4, 5, 6}));
  EXPECT_EQ(numa_cpus("isolate", 6, two_nodes(), kAll, 0), V({0, 1, 2, 3, 0, 1}));
  EXPECT_EQ(error_of([] { numa_cpus("isolate", 2, two_nodes(), V({0}), 1); }),
            "--numa isolate: node 1 has no CPU this process may run on");
  EXPECT_EQ(numa_cpus("numactl", 3, two_nodes(), V({6, 7}), 0), V({6, 7, 6}));
  EXPECT_EQ(error_of([] { numa_cpus("spread", 2, two_nodes(), kAll, 0); }),
            "unknown --numa mode 'spread'; valid: distribute, isolate, numactl");
}

TEST(Affinity, MaskCpusKeepTheAllowedOnesInOrder) {
  EXPECT_EQ(mask_cpus("0xf0", 6, kAll), V({4, 5, 6, 7, 4, 5}));
  EXPECT_EQ(mask_cpus("0xff", 2, V({1, 6})), V({1, 6}));
  EXPECT_EQ(error_of([] { mask_cpus("0x300", 2, kAll); }),
            "--cpu-mask 0x300 selects no CPU this process may run on");
}

TEST(Affinity, ReadsNodesFromSysfs) {
  const std::filesystem::path dir = test::temp_path("fake-node");
  for (const auto& [name, list] : {std::pair<std::string, std::string>{"node0", "0-3\n"},
                                   {"node1", "4-7\n"},
                                   {"node2", "\n"}}) {  // a memory-only node
    std::filesystem::create_directories(dir / name);
    std::ofstream(dir / name / "cpulist") << list;
  }
  std::filesystem::create_directories(dir / "power");  // not a node
  const std::vector<NumaNode> nodes = numa_nodes(dir.string());
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].id, 0);
  EXPECT_EQ(nodes[1].cpus, V({4, 5, 6, 7}));
  // No sysfs folder: one node with the allowed CPUs.
  const std::vector<NumaNode> none = numa_nodes((dir / "absent").string());
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].cpus, allowed_cpus());
}

TEST(Affinity, PinsTheCallingThread) {
  const V allowed = allowed_cpus();
  ASSERT_FALSE(allowed.empty());
  std::thread([&] {
    ASSERT_TRUE(pin_current_thread(allowed.back()));
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
    EXPECT_EQ(CPU_COUNT(&set), 1);
    EXPECT_TRUE(CPU_ISSET(allowed.back(), &set));
    EXPECT_EQ(sched_getcpu(), allowed.back());
    EXPECT_FALSE(pin_current_thread(-1));
  }).join();
}

}  // namespace affinity_test
}  // namespace
}  // namespace xtile
