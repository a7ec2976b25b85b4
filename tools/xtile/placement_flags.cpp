#include "placement_flags.h"

#include "base/error.h"
#include "cpu/affinity.h"

namespace xtile::cli {

void add_placement_flags(CLI::App* app, PlacementFlags* flags) {
  app->add_option("--cpu-mask", flags->cpu_mask,
                  "pin thread t to the t-th CPU of this hex mask (e.g. 0xff00; wraps around)")
      ->type_name("HEX");
  app->add_option("--numa", flags->numa,
                  "pin threads by NUMA node: distribute (contiguous blocks of threads, one "
                  "block per node), isolate (the node xtile started on), numactl (the CPUs "
                  "numactl/taskset allowed, in order)")
      ->type_name("MODE");
}

PoolOptions apply_placement(const PlacementFlags& flags, int n_threads) {
  if (!flags.cpu_mask.empty() && !flags.numa.empty())
    fail("--cpu-mask and --numa cannot be combined: each chooses every thread's CPU");
  PoolOptions options;
  if (!flags.cpu_mask.empty()) {
    options.cpus = mask_cpus(flags.cpu_mask, n_threads, allowed_cpus());
  } else if (!flags.numa.empty()) {
    const std::vector<NumaNode> nodes = numa_nodes();
    options.cpus =
        numa_cpus(flags.numa, n_threads, nodes, allowed_cpus(), current_numa_node(nodes));
  } else {
    return options;
  }
  if (!pin_current_thread(options.cpus[0]))
    fail("could not pin the main thread to CPU ", options.cpus[0]);
  return options;
}

}  // namespace xtile::cli
