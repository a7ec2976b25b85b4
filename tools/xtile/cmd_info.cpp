// `xtile info [-m FILE] [--kernels TIER]`: what this CPU offers (features, each kernel tier or
// why not, the tier auto picks, threads), and with -m a GGUF file's header, metadata and tensors.
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>

#include "base/error.h"
#include "commands.h"
#include "common.h"
#include "gguf/gguf.h"
#include "gguf_print.h"
#include "kernels/gemv_prefetch.h"
#include "kernels/pack/pack.h"
#include "model/weights.h"

namespace xtile::cli {

namespace {
namespace cmd_info {  // unity batches: CMakeLists.txt

struct InfoOptions {
  std::string model;
  std::string kernels;
  bool no_load = false;
};

void print_cpu(std::ostream& os, const InfoOptions& o) {
  const CpuCaps& caps = cpu_caps();
  // Resolve first: an unavailable --kernels choice is an error before anything is printed.
  const Tier selected = resolve_kernels(o.kernels);
  const PrefetchLevel prefetch = gemv_prefetch();
  const int streams = gemv_streams();
  const bool q8_0_four_l1 = gemv_q8_0_four_l1();
  os << version_string() << "\n\n";
  os << "CPU\n";
  os << "  model            " << (caps.model.empty() ? "(unknown)" : caps.model) << "\n";
  os << "  vendor           " << caps.vendor << " (family " << std::hex << std::showbase
     << caps.family << ", model " << caps.model_number << std::dec << std::noshowbase << ")\n";
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
  // Where a GEMV setting came from: its environment variable, or the CPU (gemv_prefetch.h).
  auto env_or_cpu = [](const char* name) {
    const char* env = std::getenv(name);
    return env && *env ? std::string(name) + "=" + env : std::string("this CPU's default");
  };
  os << "  GEMV prefetch    to " << prefetch_level_name(prefetch) << " ("
     << env_or_cpu("XTILE_GEMV_PREFETCH") << ")\n";
  os << "  GEMV streams     " << streams << " per one-row tile ("
     << env_or_cpu("XTILE_GEMV_STREAMS") << ")\n";
  os << "  GEMV Q8_0 avx2   "
     << (q8_0_four_l1 ? "4 streams to L1 per one-row tile" : "as the other types") << " ("
     << env_or_cpu("XTILE_GEMV_Q8_0") << ")\n";
}

// tensor name → "q4_0_x16 (avx512)", "q4_0_x16 (avx512, fused)", "f32 (float path)", ...
std::map<std::string, std::string> weight_placement(const WeightStore& store) {
  std::map<std::string, std::string> out;
  const std::string tier(tier_name(store.tier()));
  auto note = [&](const Projection& p) {
    for (const Matrix& m : p.parts) {
      const bool fused = m.name.find('+') != std::string::npos;
      const std::string where =
          m.packed ? std::string(layout_name(m.pm.layout)) + " (" + tier + (fused ? ", fused" : "") + ")"
                   : std::string("f32 (float path") + (fused ? ", fused" : "") + ")";
      size_t start = 0;
      while (start <= m.name.size()) {
        const size_t plus = m.name.find('+', start);
        const std::string part = m.name.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
        out[part] = out.count(part) ? out[part] : where;
        if (plus == std::string::npos) break;
        start = plus + 1;
      }
    }
  };
  for (int64_t l = 0; l < store.config().n_layer; ++l) {
    const LayerWeights& L = store.layer(l);
    note(L.qkv);
    note(L.out);
    note(L.gate_up);
    note(L.down);
  }
  note(store.output());
  return out;
}

int run_info(const InfoOptions& o) {
  print_cpu(std::cout, o);
  if (o.model.empty()) return 0;
  require_file(o.model, "model file");
  const gguf::File file = gguf::File::open(o.model);
  std::cout << "\n";
  print_gguf_header(std::cout, file);
  print_metadata(std::cout, file);
  // What the runtime does with each weight on the selected tier: load the model (repacking
  // once, as `xtile run` would) and name each matrix's packed layout. Files that are not a
  // runnable model (a vocabulary, an unsupported architecture) are listed without that column.
  std::map<std::string, std::string> placement;
  std::string not_loaded;
  if (!o.no_load && file.has("general.architecture") && !file.tensors().empty()) {
    try {
      ThreadPool pool(default_threads());
      LoadOptions lo;
      lo.tier = resolve_kernels(o.kernels);
      const auto store = WeightStore::load(o.model, pool, lo);
      placement = weight_placement(*store);
    } catch (const Error& e) {
      not_loaded = e.what();
    }
  }
  if (placement.empty()) {
    print_tensor_table(std::cout, file);
  } else {
    const TensorColumn column{"packed layout (tier)", [&](const gguf::TensorInfo& t) {
                                auto it = placement.find(t.name);
                                return it == placement.end() ? std::string("f32 (as read)") : it->second;
                              }};
    print_tensor_table(std::cout, file, {&column, 1});
  }
  if (!not_loaded.empty())
    std::cout << "\n(not loaded as a model, so no packed layouts: " << not_loaded << ")\n";
  return 0;
}

}  // namespace cmd_info
}  // namespace

Command register_info(CLI::App& root) {
  using namespace cmd_info;  // this file's helpers
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* app = root.add_subcommand(
      "info", "show the CPU's features and kernel tiers, and with -m a GGUF file's contents");
  add_model_flag(app, &opts->model, /*required=*/false);
  add_kernels_flag(app, &opts->kernels);
  app->add_flag("--no-load", opts->no_load,
                "with -m: list the file only, without loading it to show packed layouts");
  return {app, [opts] { return run_info(*opts); }};
}

}  // namespace xtile::cli
