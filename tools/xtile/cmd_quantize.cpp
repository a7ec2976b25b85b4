// `xtile quantize IN OUT TYPE [--pure]`: F32/F16/BF16 GGUF -> one of llama-quantize's file types
// (q8_0, q4_0, q4_k_m, iq4_xs, ...), with its per-tensor types (src/model/quantize_model.h).
#include <cstdio>
#include <string>

#include "base/error.h"
#include "commands.h"
#include "common.h"
#include "cpu/thread_pool.h"
#include "model/ftype.h"
#include "model/quantize_model.h"

namespace xtile::cli {

namespace {
namespace cmd_quantize {  // unity batches: CMakeLists.txt
struct QuantizeArgs {
  std::string in, out, type;
  bool pure = false;
  int threads = 1;
};

// "f32 17, q4_K 25, q6_K 5": the census llama.cpp's loader prints, in type-id order.
std::string census(const QuantizeReport& r) {
  std::string s;
  for (const auto& [type, n] : r.types)
    s += (s.empty() ? "" : ", ") + std::string(ggml_type_name(type)) + " " + std::to_string(n);
  return s;
}
}  // namespace cmd_quantize
}  // namespace

Command register_quantize(CLI::App& root) {
  using namespace cmd_quantize;  // this file's helpers
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* app = root.add_subcommand(
      "quantize",
      "Quantize an F32/F16/BF16 GGUF to a llama-quantize file type (same per-tensor types)");
  app->add_option("input", args->in, "input GGUF")->required();
  app->add_option("output", args->out, "output GGUF")->required();
  app->add_option("type", args->type, "file type: " + ftype_names())->required();
  app->add_flag("--pure", args->pure,
                "every quantizable tensor in the base type (no Q6_K output, no per-layer bumps)");
  add_threads_flag(app, &args->threads);
  return {
      app, [args]() {
        const Ftype* ftype = find_ftype(args->type);
        if (!ftype) fail("quantize: unknown type '", args->type, "'; types: ", ftype_names());
        require_file(args->in, "input model");
        require_output_file(args->out, "output model");
        ThreadPool pool(args->threads);
        ProgressBar bar("quantize");
        TypeRuleOptions options;
        options.pure = args->pure;
        const QuantizeReport r = quantize_model(
            args->in, args->out, *ftype, pool,
            [&](int done, int total, const std::string& name) { bar.update(done, total, name); },
            options);
        bar.finish();
        std::printf("%s%s: converted %d tensors, kept %d as they were; %s -> %s\n",
                    std::string(ftype->name).c_str(), args->pure ? " (pure)" : "", r.quantized,
                    r.kept, format_bytes(r.bytes_in).c_str(), format_bytes(r.bytes_out).c_str());
        std::printf("tensor types: %s\n", census(r).c_str());
        std::printf("wrote %s\n", args->out.c_str());
        return 0;
      }};
}

}  // namespace xtile::cli
