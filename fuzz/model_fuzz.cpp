// libFuzzer target for what a model file feeds beyond the GGUF reader (build and run:
// fuzz/run.sh 60 model). Every input that parses goes through the model config, the
// tokenizer load (and, when it loads, an encode/decode round trip of a fixed text) and the
// weight store's plan for the ref tier (every tensor's name, shape and type, the fused layout,
// the arena sizes; nothing allocated or packed: WeightStore::check_plan). Each step must either
// succeed or throw xtile::Error; anything else is a finding: a crash, a sanitizer report,
// another exception type (std::bad_alloc, std::out_of_range ...), a huge allocation
// (libFuzzer's -rss_limit_mb) or a broken invariant checked below.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace {

[[noreturn]] void finding(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "model fuzz finding: %s %s\n", what, detail.c_str());
  std::abort();
}

// Runs one step: xtile::Error is a clean rejection, any other exception a finding.
template <typename Step>
void step(const char* name, Step&& run) {
  try {
    run();
  } catch (const xtile::Error&) {
  } catch (const std::exception& e) {
    finding(name, std::string("threw a non-xtile exception: ") + e.what());
  } catch (...) {
    finding(name, "threw something that is not a std::exception");
  }
}

volatile uint64_t g_sink;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<xtile::gguf::File> file;
  try {
    file = std::make_unique<xtile::gguf::File>(xtile::gguf::File::parse(data, size, "fuzz.gguf"));
  } catch (const xtile::Error&) {
    return 0;  // the GGUF reader's own fuzzer covers its rejections
  }
  step("read_model_config", [&] {
    const xtile::ModelConfig c = xtile::read_model_config(*file);
    if (c.n_layer < 1 || c.n_embd < 1 || c.n_vocab < 1 || c.n_head < 1 || c.head_dim < 1)
      finding("read_model_config accepted a non-positive dimension");
    g_sink = g_sink + static_cast<uint64_t>(c.q_dim() + c.kv_dim());
  });
  step("Tokenizer::from_gguf", [&] {
    const auto tok = xtile::Tokenizer::from_gguf(*file);
    const std::vector<int32_t> ids =
        tok->encode("Once upon a time, \xc3\xa9t\xc3\xa9 <s>\n", true, true);
    for (int32_t id : ids)
      if (id < 0 || id >= tok->n_vocab()) finding("encode produced an id outside the vocabulary");
    g_sink = g_sink + tok->decode(ids, true).size();
  });
  step("WeightStore::check_plan",
       [&] { xtile::WeightStore::check_plan(std::move(file), xtile::Tier::ref); });
  return 0;
}
