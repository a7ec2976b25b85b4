#include "llama_compat.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>
#include <utility>

#include "base/error.h"

namespace xtile::cli {

namespace {
namespace llama_compat {  // unity batches: CMakeLists.txt

// Each comma-separated item of `value` (one item unless `lists`) must pass `ok`.
CLI::Validator items(bool lists, bool (*ok)(const std::string&), std::string expected) {
  return CLI::Validator(
      [lists, ok, expected](std::string& value) -> std::string {
        std::stringstream in(value);
        std::string item;
        int n = 0;
        while (std::getline(in, item, ',')) {
          ++n;
          if (!ok(item)) return "expected " + expected + ", not '" + item + "'";
        }
        if (n == 0 && !ok(value)) return "expected " + expected + ", not '" + value + "'";
        if (n > 1 && !lists) return "expected one value, not the list '" + value + "'";
        return std::string();
      },
      "");
}

bool is_count(const std::string& s) {
  return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
}
bool is_gpu_layers(const std::string& s) {
  return is_count(s) || s == "-1" || s == "auto" || s == "all";
}
bool is_switch(const std::string& s) {
  return s.empty() || s == "0" || s == "1" || s == "on" || s == "off" || s == "auto" ||
         s == "true" || s == "false";
}
bool is_off(const std::string& s) {
  return s == "0" || s == "off" || s == "false";
}
bool is_split_mode(const std::string& s) {
  return s == "none" || s == "layer" || s == "row";
}

// Once per process and text: the setting asked for is not xtile's one.
void note_once(const std::string& text) {
  static std::set<std::string> said;
  if (said.insert(text).second) std::fprintf(stderr, "xtile: note: %s\n", text.c_str());
}

// A switch flag (optional value, as -fa alone or -fa on) that is off in one of its items.
bool any_off(const std::string& value) {
  std::stringstream in(value);
  std::string item;
  while (std::getline(in, item, ','))
    if (is_off(item)) return true;
  return false;
}

// A switch for what xtile always does: on (or bare) changes nothing, off gets `off_note`.
CLI::Option* add_always_on(CLI::App* app, bool lists, const std::string& name,
                           const std::string& description, std::string off_note) {
  return app->add_option(name, description)
      ->expected(0, 1)
      ->check(items(lists, is_switch, "on, off, auto, 0 or 1"))
      ->each([off_note](const std::string& v) {
        if (!off_note.empty() && any_off(v)) note_once(off_note);
      })
      ->type_name("0|1");
}

}  // namespace llama_compat
}  // namespace

void add_llama_compat_flags(CLI::App* app, bool lists, int64_t* ubatch) {
  using namespace llama_compat;  // this file's helpers
  const char* group =
      "llama.cpp's flags, so that its command lines run (-ub caps -b; the others change nothing "
      "here)";
  app->add_option("--n-gpu-layers,--gpu-layers",
                  "-ngl: layers on a GPU; xtile runs them all on the CPU")
      ->check(items(lists, is_gpu_layers, "a layer count"))
      ->type_name("N")
      ->group(group);
  app->add_option("--split-mode", "-sm: none, layer or row (GPU)")
      ->check(items(lists, is_split_mode, "none, layer or row"))
      ->type_name("MODE")
      ->group(group);
  app->add_option("--main-gpu", "-mg (GPU)")
      ->check(items(lists, is_count, "a GPU index"))
      ->type_name("I")
      ->group(group);
  add_always_on(app, lists, "--no-kv-offload", "-nkvo (GPU)", "")->group(group);
  add_always_on(app, lists, "--flash-attn",
                "-fa: xtile's attention is always tiled with an online softmax (flash-style), "
                "exact by its contract",
                "-fa off: xtile has one attention, tiled with an online softmax (flash-style); it "
                "runs as always")
      ->group(group);
  add_always_on(app, lists, "--mmap",
                "-mmp: xtile always maps the file (repacked weights replace pages)",
                "-mmp 0: xtile always maps the model file; it runs as always")
      ->group(group);
  app->add_flag_callback(
         "--no-mmap",
         [] { note_once("--no-mmap: xtile always maps the model file; it runs as always"); },
         "xtile always maps the file")
      ->group(group);
  add_always_on(app, lists, "--run-time-repack",
                "-rtr (ik_llama.cpp): xtile always repacks the weights at load",
                "-rtr 0: xtile always repacks the weights at load; it runs as always")
      ->group(group);
  app->add_option("--ubatch-size", *ubatch,
                  "-ub: llama.cpp's physical batch; the forward batch is min(-b, -ub)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->type_name("N")
      ->group(group);
}

int64_t forward_batch(int64_t batch, int64_t ubatch) {
  return ubatch > 0 ? std::min(batch, ubatch) : batch;
}

void respell_llama_flags(std::vector<std::string>* args) {
  static const std::pair<const char*, const char*> kLong[] = {
      {"-pg", "--pg"},
      {"-ctk", "--cache-type-k"},
      {"-ctv", "--cache-type-v"},
      {"-np", "--parallel"},
      {"-sys", "--system-prompt"},
      {"-ngl", "--n-gpu-layers"},
      {"-fa", "--flash-attn"},
      {"-mmp", "--mmap"},
      {"-ub", "--ubatch-size"},
      {"-sm", "--split-mode"},
      {"-mg", "--main-gpu"},
      {"-nkvo", "--no-kv-offload"},
      {"-rtr", "--run-time-repack"},
      {"-to", "--timeout"},
      {"-cb", "--cont-batching"},
      {"-kvu", "--kv-unified"},
      {"-no-cnv", "--no-conversation"},
  };
  static const std::pair<const char*, const char*> kRefused[] = {
      {"-hf", "downloads from Hugging Face: give the GGUF file with -m"},
      {"-hfr", "downloads from Hugging Face: give the GGUF file with -m"},
      {"-hff", "downloads from Hugging Face: give the GGUF file with -m"},
      {"-md", "a draft model (speculative decoding) is not supported"},
      {"-ngld", "a draft model (speculative decoding) is not supported"},
      {"-ot", "tensor overrides place tensors on devices; xtile runs every tensor on the CPU"},
      {"-ts", "a tensor split spreads a model over GPUs; xtile runs on the CPU"},
      {"-dev", "xtile runs on the CPU; there is no device to choose"},
      {"-cnv", "conversation mode is xtile chat (xtile chat -m MODEL)"},
  };
  for (std::string& a : *args) {
    for (const auto& [one_dash, long_form] : kLong)
      if (a == one_dash) a = long_form;
    for (const auto& [flag, why] : kRefused)
      if (a == flag) fail(flag, ": ", why);
  }
}

}  // namespace xtile::cli
