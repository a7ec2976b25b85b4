// Flags and helpers shared by the subcommands: the flag spellings llama.cpp users know
// (-m, -t, --kernels, -s), defaults, number formatting and a terminal progress bar.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cpu/cpu_caps.h"
#include "model/chat_template.h"
#include "model/kv_cache.h"

namespace xtile::cli {

std::string version_string();  // "xtile 0.1.0 (g++ 12.2.0, Release)"

// Physical cores this process may run on (distinct core ids among the CPUs of its affinity
// mask), at least 1: llama.cpp's default too, since a second hyper-thread on a core adds
// little to matmul throughput and costs synchronisation.
int default_threads();

// Validator for counts (threads, layers, sizes): an integer >= 1, with a readable message
// (CLI11's PositiveNumber prints the whole range of a double).
const CLI::Validator& at_least_one();

// -m/--model FILE. The existence check happens at run time (exit 1 naming the path).
CLI::Option* add_model_flag(CLI::App* app, std::string* path, bool required);
// -t/--threads N (>= 1), defaulting to default_threads().
CLI::Option* add_threads_flag(CLI::App* app, int* threads);
// --kernels auto|ref|avx2|avx512|amx|amx-emu; empty means "XTILE_KERNELS or auto".
CLI::Option* add_kernels_flag(CLI::App* app, std::string* kernels);
// -s/--seed N.
CLI::Option* add_seed_flag(CLI::App* app, uint64_t* seed);

// -l/--logit-bias TOKEN_ID(+|-)BIAS, repeatable (llama.cpp's): 15043+1, 15043-1.5, 2-inf (never
// token 2). Checked for its form when parsed.
CLI::Option* add_logit_bias_flag(CLI::App* app, std::vector<std::string>* specs);
// The flags' entries, one per token (sampling::merge_logit_bias); throws xtile::Error naming a
// malformed one, or a token outside the vocabulary of n_vocab.
std::vector<std::pair<int32_t, float>> parse_logit_bias(const std::vector<std::string>& specs,
                                                        int64_t n_vocab);

// --chat-template NAME (llama.cpp's name): none, chatml, qwen3, llama3 or llama2 instead of the
// family the GGUF's template is recognised as.
CLI::Option* add_chat_template_flag(CLI::App* app, std::string* name);
// The flag's family, or detect_chat_family(file) when it is empty; throws xtile::Error for an
// unknown name.
ChatFamily resolve_chat_family(const std::string& flag, const gguf::File& file);

// llama.cpp's prompt escapes (its -e, on by default): \n \r \t \' \" \\ and \xHH become
// the characters; any other backslash stays as written.
std::string process_escapes(std::string_view s);

// --cache-type-k / --cache-type-v (llama.cpp's -ctk / -ctv) and --cache-type for both.
struct CacheTypeFlags {
  std::string both = "f16";
  std::string k, v;  // empty: `both`
};
void add_cache_type_flags(CLI::App* app, CacheTypeFlags* f);
// The K and V types the flags name; throws xtile::Error naming a type that does not exist.
std::pair<KvType, KvType> resolve_cache_types(const CacheTypeFlags& f);

// The tier for a --kernels value (honours XTILE_KERNELS when the flag is empty); throws
// xtile::Error when the tier cannot run here.
Tier resolve_kernels(const std::string& flag_value);

// Throws xtile::Error "<what> '<path>' does not exist" (or is not a regular file).
void require_file(const std::string& path, std::string_view what);

// For an output file: throws xtile::Error when `path` exists and is not a regular file. Writers
// create "<path>.tmp" and rename it over `path`, which would replace a device (-o /dev/null),
// a FIFO or a symbolic link instead of writing into it.
void require_output_file(const std::string& path, std::string_view what);

std::string format_bytes(uint64_t bytes);   // "380.46 MiB"
std::string format_count(uint64_t n);       // "596.05 M"
std::string format_seconds(double s);       // "1.23 s"

// One-line progress on stderr, only when stderr is a terminal, redrawn at most ~10 times a
// second; finish() ends the line, clear() erases it (to print other lines on the terminal; the
// next update() draws it again). done/total are shown as bytes or as plain counts.
class ProgressBar {
 public:
  enum class Unit { bytes, count };
  explicit ProgressBar(std::string label, Unit unit = Unit::bytes);
  ~ProgressBar();
  void update(uint64_t done, uint64_t total, std::string_view detail);
  void clear();
  void finish();
  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  Unit unit_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
  std::chrono::steady_clock::time_point start_;
};

}  // namespace xtile::cli
