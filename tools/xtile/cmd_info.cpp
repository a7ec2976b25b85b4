// `xtile info [-m FILE] [--kernels TIER]`: what this CPU offers (features, each kernel tier or
// why not, the tier auto picks, threads), and with -m a GGUF file's header, metadata and tensors.
#include <cstdlib>
#include <iostream>
#include <memory>

#include "commands.h"
#include "common.h"
#include "gguf/gguf.h"
#include "gguf_print.h"

namespace xtile::cli {

namespace {

struct InfoOptions {
  std::string model;
  std::string kernels;
};

void print_cpu(std::ostream& os, const InfoOptions& o) {
  const CpuCaps& caps = cpu_caps();
  // Resolve first: an unavailable --kernels choice is an error before anything is printed.
  const Tier selected = resolve_kernels(o.kernels);
  os << version_string() << "\n\n";
  os << "CPU\n";
  os << "  model            " << (caps.model.empty() ? "(unknown)" : caps.model) << "\n";
  os << "  vendor           " << caps.vendor << "\n";
  os << "  features         " << caps.features_string() << "\n";
  os << "  logical CPUs     " << caps.logical_cpus << "\n";
  os << "  default threads  " << default_threads() << " (physical cores)\n";
  os << "\nkernel tiers\n";
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < kTierCount; ++i) {
    const Tier t = static_cast<Tier>(i);
    const std::string why = caps.tier_unavailable_reason(t);
    rows.push_back(
        {std::string(tier_name(t)), why.empty() ? "available" : "not available: " + why});
  }
  print_table(os, {{"tier"}, {"status"}}, rows);
  os << "  auto picks       " << tier_name(caps.best_tier()) << "\n";
  const char* env = std::getenv("XTILE_KERNELS");
  std::string source = "auto";
  if (!o.kernels.empty()) {
    source = "--kernels " + o.kernels;
  } else if (env && *env) {
    source = std::string("XTILE_KERNELS=") + env;
  }
  os << "  selected         " << tier_name(selected) << " (" << source << ")\n";
}

int run_info(const InfoOptions& o) {
  print_cpu(std::cout, o);
  if (o.model.empty()) return 0;
  require_file(o.model, "model file");
  const gguf::File file = gguf::File::open(o.model);
  std::cout << "\n";
  print_gguf_header(std::cout, file);
  print_metadata(std::cout, file);
  print_tensor_table(std::cout, file);
  return 0;
}

}  // namespace

Command register_info(CLI::App& root) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* app = root.add_subcommand(
      "info", "show the CPU's features and kernel tiers, and with -m a GGUF file's contents");
  add_model_flag(app, &opts->model, /*required=*/false);
  add_kernels_flag(app, &opts->kernels);
  return {app, [opts] { return run_info(*opts); }};
}

}  // namespace xtile::cli
