#include "common.h"

#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "base/error.h"
#include "model/sampler.h"

// The project version comes from CMake's project(VERSION) when the build passes it; the literal
// is the same number, for builds that do not.
#ifndef XTILE_VERSION
#define XTILE_VERSION "0.1.0"
#endif

namespace xtile::cli {

std::string version_string() {
  std::string s = "xtile " XTILE_VERSION;
#if defined(__clang__)
  s += " (clang " __clang_version__;
#elif defined(__GNUC__)
  s += " (g++ " __VERSION__;
#else
  s += " (";
#endif
#ifdef NDEBUG
  s += ", optimized)";
#else
  s += ", debug build)";
#endif
  return s;
}

namespace {
namespace common {  // unity batches: CMakeLists.txt

bool read_int(const std::string& path, int* value) {
  std::ifstream in(path);
  return static_cast<bool>(in >> *value);
}

}  // namespace common
}  // namespace

int default_threads() {
  using namespace common;  // this file's helpers
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof(mask), &mask) != 0) {
    return std::max(1u, std::thread::hardware_concurrency());
  }
  std::set<std::pair<int, int>> cores;
  int logical = 0;
  bool topology_known = true;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &mask)) continue;
    ++logical;
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    int package = 0, core = 0;
    if (!read_int(dir + "physical_package_id", &package) || !read_int(dir + "core_id", &core)) {
      topology_known = false;
      continue;
    }
    cores.insert({package, core});
  }
  // Without sysfs topology (some containers), every allowed logical CPU counts as a core.
  const int n = topology_known ? static_cast<int>(cores.size()) : logical;
  return std::max(1, n);
}

const CLI::Validator& at_least_one() {
  static const CLI::Validator v(
      [](std::string& value) -> std::string {
        long long n = 0;
        if (!CLI::detail::lexical_cast(value, n) || n < 1)
          return "must be an integer of at least 1, not '" + value + "'";
        return std::string();
      },
      "");
  return v;
}

CLI::Option* add_model_flag(CLI::App* app, std::string* path, bool required) {
  CLI::Option* o = app->add_option("-m,--model", *path, "GGUF model file")->type_name("FILE");
  if (required) o->required();
  return o;
}

void add_cache_type_flags(CLI::App* app, CacheTypeFlags* f) {
  app->add_option("--cache-type-k", f->k, std::string("K cache type (-ctk): ") + kKvTypeNames);
  app->add_option("--cache-type-v", f->v, std::string("V cache type (-ctv): ") + kKvTypeNames);
  app->add_option("--cache-type", f->both, std::string("K and V cache type: ") + kKvTypeNames)
      ->capture_default_str()
      ->type_name("TYPE");
}

std::pair<KvType, KvType> resolve_cache_types(const CacheTypeFlags& f) {
  auto type = [](const std::string& name) {
    const auto t = kv_type_from_name(name);
    if (!t) fail("cache type '", name, "': expected ", kKvTypeNames);
    return *t;
  };
  const KvType both = type(f.both);
  return {f.k.empty() ? both : type(f.k), f.v.empty() ? both : type(f.v)};
}

CLI::Option* add_threads_flag(CLI::App* app, int* threads) {
  *threads = default_threads();
  return app
      ->add_option("-t,--threads", *threads, "number of threads (default: physical cores)")
      ->check(at_least_one())
      ->type_name("N")
      ->capture_default_str();
}

CLI::Option* add_kernels_flag(CLI::App* app, std::string* kernels) {
  return app
      ->add_option("--kernels", *kernels,
                   "kernel tier: auto|ref|avx2|avx512|amx|amx-emu (default: $XTILE_KERNELS, "
                   "else auto)")
      ->check(CLI::IsMember({"auto", "ref", "avx2", "avx512", "amx", "amx-emu", "amx_emu"}))
      ->type_name("TIER");
}

CLI::Option* add_seed_flag(CLI::App* app, uint64_t* seed) {
  return app->add_option("-s,--seed", *seed, "random seed")->type_name("N")->capture_default_str();
}

namespace {
namespace common {  // unity batches: CMakeLists.txt

// "ID+B" / "ID-B" (B a float, inf allowed) -> (id, bias); nullopt when malformed.
std::optional<std::pair<int32_t, float>> logit_bias_entry(const std::string& spec) {
  const size_t sign = spec.find_first_of("+-");
  if (sign == 0 || sign == std::string::npos || sign + 1 == spec.size()) return std::nullopt;
  const std::string id = spec.substr(0, sign);
  if (id.size() > 10 || id.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  const long long n = std::stoll(id);
  if (n > INT32_MAX) return std::nullopt;
  const std::string value = spec.substr(sign);
  char* end = nullptr;
  const float bias = std::strtof(value.c_str(), &end);
  if (end != value.c_str() + value.size() || std::isnan(bias)) return std::nullopt;
  return std::make_pair(static_cast<int32_t>(n), bias);
}

}  // namespace common
}  // namespace

CLI::Option* add_logit_bias_flag(CLI::App* app, std::vector<std::string>* specs) {
  using namespace common;  // this file's helpers
  return app
      ->add_option("-l,--logit-bias", *specs,
                   "TOKEN_ID(+|-)BIAS added to that token's logit, repeatable: 15043+1, "
                   "15043-1.5, 2-inf (never token 2)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return logit_bias_entry(v)
                       ? std::string()
                       : "expected TOKEN_ID(+|-)BIAS (e.g. 15043+1, 2-inf), not '" + v + "'";
          },
          ""))
      ->type_name("ID+B");
}

std::vector<std::pair<int32_t, float>> parse_logit_bias(const std::vector<std::string>& specs,
                                                        int64_t n_vocab) {
  using namespace common;  // this file's helpers
  std::vector<std::pair<int32_t, float>> entries;
  for (const std::string& spec : specs) {
    const auto e = logit_bias_entry(spec);
    if (!e)
      fail("--logit-bias: expected TOKEN_ID(+|-)BIAS (e.g. 15043+1, 2-inf), not '", spec, "'");
    if (e->first >= n_vocab)
      fail("--logit-bias ", spec, ": token ", e->first, " is outside the vocabulary (", n_vocab,
           " tokens)");
    entries.push_back(*e);
  }
  return sampling::merge_logit_bias(entries);
}

std::string process_escapes(std::string_view s) {
  const auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char next = i + 1 < s.size() ? s[i + 1] : '\0';
    char c = 0;
    if (s[i] == '\\') {
      switch (next) {
        case 'n':
          c = '\n';
          break;
        case 'r':
          c = '\r';
          break;
        case 't':
          c = '\t';
          break;
        case '\'':
          c = '\'';
          break;
        case '"':
          c = '"';
          break;
        case '\\':
          c = '\\';
          break;
        default:
          break;
      }
    }
    if (c != 0) {
      out += c;
      ++i;
    } else if (s[i] == '\\' && next == 'x' && i + 3 < s.size() && hex(s[i + 2]) >= 0 &&
               hex(s[i + 3]) >= 0) {
      out += static_cast<char>(hex(s[i + 2]) * 16 + hex(s[i + 3]));
      i += 3;
    } else {
      out += s[i];  // not an escape: the backslash stays as written
    }
  }
  return out;
}

CLI::Option* add_chat_template_flag(CLI::App* app, std::string* name) {
  return app
      ->add_option("--chat-template", *name,
                   "chat template: none, chatml, qwen3, llama3, llama3.1, llama3.2 or llama2 "
                   "(default: the GGUF's, "
                   "recognised by its markers)")
      ->check(
          CLI::IsMember({"none", "chatml", "qwen3", "llama3", "llama3.1", "llama3.2", "llama2"}))
      ->type_name("NAME");
}

ChatFamily resolve_chat_family(const std::string& flag, const gguf::File& file) {
  return flag.empty() ? detect_chat_family(file) : parse_chat_family(flag);
}

Tier resolve_kernels(const std::string& flag_value) {
  return resolve_tier(cpu_caps(), flag_value);
}

void require_file(const std::string& path, std::string_view what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) fail(what, " '", path, "' does not exist");
  if (std::filesystem::is_directory(status)) fail(what, " '", path, "' is a directory");
}

void require_output_file(const std::string& path, std::string_view what) {
  if (path.empty()) fail(what, " path is empty");
  std::error_code ec;
  const auto status = std::filesystem::symlink_status(path, ec);
  if (ec || !std::filesystem::exists(status)) return;  // a new file
  if (!std::filesystem::is_regular_file(status))
    fail(what, " '", path, "' exists and is not a regular file; refusing to replace it");
}

std::string format_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", v, kUnits[u]);
  return buf;
}

std::string format_count(uint64_t n) {
  static constexpr const char* kUnits[] = {"", " K", " M", " B", " T"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000.0 && u < 4) {
    v /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f%s" : "%.2f%s", v, kUnits[u]);
  return buf;
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), s < 10 ? "%.2f s" : "%.1f s", s);
  return buf;
}

ProgressBar::ProgressBar(std::string label, Unit unit)
    : label_(std::move(label)),
      unit_(unit),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(uint64_t done, uint64_t total, std::string_view detail) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  constexpr int kWidth = 30;
  const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const int fill = static_cast<int>(frac * kWidth);
  const double secs = std::chrono::duration<double>(now - start_).count();
  std::string bar(static_cast<size_t>(fill), '#');
  bar.resize(kWidth, '.');
  std::string line = label_ + " [" + bar + "] ";
  char pct[16];
  std::snprintf(pct, sizeof(pct), "%3d%% ", static_cast<int>(frac * 100.0));
  if (unit_ == Unit::bytes)
    line += pct + format_bytes(done) + " / " + format_bytes(total);
  else
    line += pct + std::to_string(done) + "/" + std::to_string(total);
  line += "  " + format_seconds(secs);
  if (!detail.empty()) line += "  " + std::string(detail);
  // A line wider than the terminal wraps, and "\r" then only returns to the last row: cut it.
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && line.size() >= ws.ws_col)
    line.resize(ws.ws_col - 1u);
  std::cerr << "\r\033[K" << line << std::flush;
}

void ProgressBar::clear() {
  if (enabled_ && drawn_) std::cerr << "\r\033[K" << std::flush;
  drawn_ = false;
}

void ProgressBar::finish() {
  if (enabled_ && drawn_) std::cerr << "\n" << std::flush;
  drawn_ = false;
}

}  // namespace xtile::cli
