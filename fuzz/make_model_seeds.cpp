// Writes small valid models into a directory: the model fuzzer's seed corpus (one layer of each
// tiny synthetic preset, in Q8_0 and Q4_0, with synth's generated vocabulary). Usage:
// xtile_model_seeds <dir>
#include <cstdio>
#include <string>

#include "base/error.h"
#include "model/synth.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <seed-dir>\n", argv[0]);
    return 2;
  }
  try {
    for (const char* preset : {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3moe"})
      for (xtile::GgmlType type : {xtile::GgmlType::Q8_0, xtile::GgmlType::Q4_0}) {
        xtile::synth::Options o;
        o.preset = preset;
        o.type = type;
        o.layers = 1;
        o.seed = 1;
        const std::string path = std::string(argv[1]) + "/" + preset + "-" +
                                 std::string(xtile::ggml_type_name(type)) + ".gguf";
        xtile::synth::write_model(o, path);
      }
  } catch (const xtile::Error& e) {
    std::fprintf(stderr, "xtile_model_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
