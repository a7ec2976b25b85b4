// Thread placement, in the spirit of llama.cpp's --cpu-mask and --numa: lists of CPUs, one per
// pool thread, built from a hex mask or from the NUMA topology in sysfs, and pinning.
//
// Why: on a two-socket Xeon, a thread that migrates to the other socket reads its share of the
// weights across the inter-socket link at a fraction of the local bandwidth. Pinned threads stay
// where their rows are (docs/ARCHITECTURE.md, "Threads and memory on two sockets").
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace xtile {

// "0x0f", "F0", "ff00ff": the CPUs whose bits are set (bit i of the number = CPU i), ascending.
// Throws xtile::Error naming the text for a non-hex digit or an empty/zero mask.
std::vector<int> parse_cpu_mask(std::string_view hex);

// The kernel's cpulist format (sysfs, /proc/self/status Cpus_allowed_list): "0-3,8,10-11".
// Throws xtile::Error naming the text when malformed.
std::vector<int> parse_cpu_list(std::string_view list);

// The CPUs this process may run on (sched_getaffinity), ascending.
std::vector<int> allowed_cpus();

struct NumaNode {
  int id = 0;
  std::vector<int> cpus;  // ascending
};
// The NUMA nodes under `sysfs` (node<N>/cpulist), nodes without CPUs left out; one node holding
// every allowed CPU when the folder is absent (no NUMA support: a single node).
std::vector<NumaNode> numa_nodes(const std::string& sysfs = "/sys/devices/system/node");

// The CPU of each of n_threads threads (thread t runs on result[t]) for a --numa mode, from
// `nodes` and the `allowed` CPUs:
//   distribute  the threads split into contiguous blocks, one block per node (as even as
//               possible), each thread on its own CPU of its node where there are enough;
//   isolate     only the CPUs of `current_node` (the node the process started on);
//   numactl     the allowed CPUs in order (the placement numactl/taskset chose).
// Throws xtile::Error for an unknown mode or when no allowed CPU is left.
std::vector<int> numa_cpus(std::string_view mode, int n_threads, const std::vector<NumaNode>& nodes,
                           const std::vector<int>& allowed, int current_node);

// The CPU of each of n_threads threads for a --cpu-mask: its CPUs in ascending order, repeated
// when there are more threads than CPUs. Throws when the mask has no allowed CPU.
std::vector<int> mask_cpus(std::string_view hex, int n_threads, const std::vector<int>& allowed);

// The NUMA node of the CPU the calling thread runs on (0 without NUMA information).
int current_numa_node(const std::vector<NumaNode>& nodes);

// Pins the calling thread to one CPU; false (and no change) when the OS refuses.
bool pin_current_thread(int cpu);

}  // namespace xtile
