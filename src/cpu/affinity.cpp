#include "cpu/affinity.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/error.h"

namespace xtile {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<int> intersect(const std::vector<int>& cpus, const std::vector<int>& allowed) {
  const std::set<int> ok(allowed.begin(), allowed.end());
  std::vector<int> out;
  for (int c : cpus)
    if (ok.count(c)) out.push_back(c);
  return out;
}

}  // namespace

std::vector<int> parse_cpu_mask(std::string_view hex) {
  std::string_view digits = hex;
  if (digits.size() >= 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
    digits.remove_prefix(2);
  if (digits.empty()) fail("CPU mask '", hex, "' has no hex digits");
  std::vector<int> cpus;
  // The last digit holds CPUs 0-3.
  for (size_t i = 0; i < digits.size(); ++i) {
    const int v = hex_digit(digits[digits.size() - 1 - i]);
    if (v < 0) fail("CPU mask '", hex, "' is not hexadecimal");
    for (int b = 0; b < 4; ++b)
      if (v & (1 << b)) cpus.push_back(static_cast<int>(i) * 4 + b);
  }
  if (cpus.empty()) fail("CPU mask '", hex, "' selects no CPU");
  return cpus;
}

std::vector<int> parse_cpu_list(std::string_view list) {
  std::vector<int> cpus;
  std::string_view rest = list;
  while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.back())))
    rest.remove_suffix(1);
  if (rest.empty()) return cpus;
  auto number = [&](std::string_view s) {
    int v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v < 0)
      fail("CPU list '", list, "': '", s, "' is not a CPU number");
    return v;
  };
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      cpus.push_back(number(item));
      continue;
    }
    const int lo = number(item.substr(0, dash)), hi = number(item.substr(dash + 1));
    if (hi < lo) fail("CPU list '", list, "': range '", item, "' is backwards");
    for (int c = lo; c <= hi; ++c) cpus.push_back(c);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  for (int ncpus = 1024; ncpus <= (1 << 16); ncpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(ncpus);
    if (set == nullptr) break;
    const size_t size = CPU_ALLOC_SIZE(ncpus);
    CPU_ZERO_S(size, set);
    const bool ok = sched_getaffinity(0, size, set) == 0;
    if (ok)
      for (int c = 0; c < ncpus; ++c)
        if (CPU_ISSET_S(c, size, set)) cpus.push_back(c);
    CPU_FREE(set);
    if (ok) break;
  }
  return cpus;
}

std::vector<NumaNode> numa_nodes(const std::string& sysfs) {
  namespace fs = std::filesystem;
  std::vector<NumaNode> nodes;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(sysfs, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("node", 0) != 0 || name.size() == 4) continue;
    int id = 0;
    const auto [end, perr] = std::from_chars(name.data() + 4, name.data() + name.size(), id);
    if (perr != std::errc() || end != name.data() + name.size()) continue;
    std::ifstream in(entry.path() / "cpulist");
    std::stringstream text;
    text << in.rdbuf();
    NumaNode node{id, parse_cpu_list(text.str())};
    if (!node.cpus.empty()) nodes.push_back(std::move(node));
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const NumaNode& a, const NumaNode& b) { return a.id < b.id; });
  if (nodes.empty()) nodes.push_back(NumaNode{0, allowed_cpus()});
  return nodes;
}

int current_numa_node(const std::vector<NumaNode>& nodes) {
  const int cpu = sched_getcpu();
  for (const NumaNode& n : nodes)
    if (std::find(n.cpus.begin(), n.cpus.end(), cpu) != n.cpus.end()) return n.id;
  return nodes.empty() ? 0 : nodes.front().id;
}

std::vector<int> numa_cpus(std::string_view mode, int n_threads, const std::vector<NumaNode>& nodes,
                           const std::vector<int>& allowed, int current_node) {
  if (n_threads < 1) fail("numa_cpus: n_threads must be >= 1, got ", n_threads);
  std::vector<int> out;
  if (mode == "numactl") {
    if (allowed.empty()) fail("--numa numactl: this process may run on no CPU");
    for (int t = 0; t < n_threads; ++t)
      out.push_back(allowed[static_cast<size_t>(t) % allowed.size()]);
    return out;
  }
  if (mode == "isolate") {
    for (const NumaNode& n : nodes)
      if (n.id == current_node) {
        const std::vector<int> cpus = intersect(n.cpus, allowed);
        if (cpus.empty()) break;
        for (int t = 0; t < n_threads; ++t)
          out.push_back(cpus[static_cast<size_t>(t) % cpus.size()]);
        return out;
      }
    fail("--numa isolate: node ", current_node, " has no CPU this process may run on");
  }
  if (mode == "distribute") {
    std::vector<std::vector<int>> usable;
    for (const NumaNode& n : nodes) {
      std::vector<int> cpus = intersect(n.cpus, allowed);
      if (!cpus.empty()) usable.push_back(std::move(cpus));
    }
    if (usable.empty()) fail("--numa distribute: no NUMA node has a CPU this process may run on");
    // Thread t goes to node t * nodes / n_threads: contiguous blocks, so that the contiguous
    // row ranges the matmuls give to consecutive threads stay on one node.
    const int n_nodes = static_cast<int>(usable.size());
    for (int t = 0; t < n_threads; ++t) {
      const int node = static_cast<int>(static_cast<int64_t>(t) * n_nodes / n_threads);
      const int first =
          static_cast<int>((static_cast<int64_t>(node) * n_threads + n_nodes - 1) / n_nodes);
      const std::vector<int>& cpus = usable[static_cast<size_t>(node)];
      out.push_back(cpus[static_cast<size_t>(t - first) % cpus.size()]);
    }
    return out;
  }
  fail("unknown --numa mode '", mode, "'; valid: distribute, isolate, numactl");
}

std::vector<int> mask_cpus(std::string_view hex, int n_threads, const std::vector<int>& allowed) {
  if (n_threads < 1) fail("mask_cpus: n_threads must be >= 1, got ", n_threads);
  const std::vector<int> cpus = intersect(parse_cpu_mask(hex), allowed);
  if (cpus.empty()) fail("--cpu-mask ", hex, " selects no CPU this process may run on");
  std::vector<int> out;
  for (int t = 0; t < n_threads; ++t) out.push_back(cpus[static_cast<size_t>(t) % cpus.size()]);
  return out;
}

bool pin_current_thread(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE * 64) return false;
  const int ncpus = cpu + 1;
  cpu_set_t* set = CPU_ALLOC(ncpus);
  if (set == nullptr) return false;
  const size_t size = CPU_ALLOC_SIZE(ncpus);
  CPU_ZERO_S(size, set);
  CPU_SET_S(cpu, size, set);
  const bool ok = pthread_setaffinity_np(pthread_self(), size, set) == 0;
  CPU_FREE(set);
  return ok;
}

}  // namespace xtile
