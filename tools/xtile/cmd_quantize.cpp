// `xtile quantize IN OUT TYPE`: F32/F16/BF16 GGUF → Q8_0 or Q4_0 (src/model/quantize_model.h).
#include <cstdio>

#include "base/error.h"
#include "commands.h"
#include "common.h"
#include "cpu/thread_pool.h"
#include "model/quantize_model.h"

namespace xtile::cli {

namespace {
struct QuantizeArgs {
  std::string in, out, type;
  int threads = 1;
};
}  // namespace

Command register_quantize(CLI::App& root) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* app = root.add_subcommand(
      "quantize", "Quantize an F32/F16/BF16 GGUF to q8_0 or q4_0 (GGML's reference rules)");
  app->add_option("input", args->in, "input GGUF")->required();
  app->add_option("output", args->out, "output GGUF")->required();
  app->add_option("type", args->type, "q8_0 or q4_0")->required();
  add_threads_flag(app, &args->threads);
  return {app, [args]() {
            require_file(args->in, "input model");
            require_output_file(args->out, "output model");
            const auto type = ggml_type_from_name(args->type);
            if (!type || (*type != GgmlType::Q8_0 && *type != GgmlType::Q4_0))
              fail("quantize: unknown or unsupported type '", args->type, "' (q8_0, q4_0)");
            ThreadPool pool(args->threads);
            ProgressBar bar("quantize");
            const QuantizeReport r = quantize_model(
                args->in, args->out, *type, pool,
                [&](int done, int total, const std::string& name) { bar.update(done, total, name); });
            bar.finish();
            std::printf("quantized %d tensors to %s, kept %d as they were; %s -> %s\n", r.quantized,
                        std::string(ggml_type_name(*type)).c_str(), r.kept,
                        format_bytes(r.bytes_in).c_str(), format_bytes(r.bytes_out).c_str());
            std::printf("wrote %s\n", args->out.c_str());
            return 0;
          }};
}

}  // namespace xtile::cli
