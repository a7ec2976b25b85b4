// The sampling flags `xtile run`, `xtile chat` and `xtile serve` share, with llama.cpp's names
// (--temp, --top-k, --top-p, --min-p, --repeat-penalty, --typical, --top-nsigma, --xtc-*,
// --dynatemp-*, --mirostat*, --dry-*): each given flag overrides the sampler's default
// (model/sampler.h), serve's applying to every request that does not set the field itself.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/sampler.h"
#include "tokenizer/tokenizer.h"

namespace xtile::cli {

struct SamplerFlags {
  std::optional<float> temp, top_p, min_p, repeat_penalty, typical, top_n_sigma, xtc_probability,
      xtc_threshold, dynatemp_range, dynatemp_exp, mirostat_lr, mirostat_ent, dry_multiplier,
      dry_base;
  std::optional<int> top_k, mirostat, dry_allowed_length, dry_penalty_last_n;
  std::vector<std::string> dry_breakers;  // --dry-sequence-breaker (empty: llama.cpp's)

  // Some flag that shapes the distribution was given (run: sample instead of greedy).
  bool any() const;
  // The given flags onto p. DRY's breakers become the vocabulary's tokens (none without `tok`).
  void apply(SamplerParams* p, const Tokenizer* tok) const;
  // DRY's breaker strings: the flag's, else llama.cpp's default ("none" alone: no breakers).
  std::vector<std::string> breaker_strings() const;
};

// Adds the flags; `default_note` prefixes their help ("default " for serve's).
void add_sampler_flags(CLI::App* app, SamplerFlags* f, const std::string& default_note = "");

}  // namespace xtile::cli
