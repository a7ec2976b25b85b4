#include "sampler_flags.h"

#include "server/sampler_fields.h"

namespace xtile::cli {

bool SamplerFlags::any() const {
  return temp || top_k || top_p || min_p || repeat_penalty || typical || top_n_sigma ||
         xtc_probability || dynatemp_range || mirostat || dry_multiplier;
}

namespace {
namespace sampler_flags {  // unity batches: CMakeLists.txt

// A shell passes "\n" as two characters: the escapes llama.cpp reads in these strings.
std::string unescaped(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
  }
  return out;
}

}  // namespace sampler_flags
}  // namespace

std::vector<std::string> SamplerFlags::breaker_strings() const {
  using namespace sampler_flags;  // this file's helpers
  if (dry_breakers.empty()) return server::default_dry_breakers();
  if (dry_breakers.size() == 1 && dry_breakers[0] == "none") return {};
  std::vector<std::string> out;
  for (const std::string& b : dry_breakers) out.push_back(unescaped(b));
  return out;
}

void SamplerFlags::apply(SamplerParams* p, const Tokenizer* tok) const {
  auto set = [](auto& to, const auto& from) {
    if (from) to = *from;
  };
  set(p->temperature, temp);
  set(p->top_k, top_k);
  set(p->top_p, top_p);
  set(p->min_p, min_p);
  set(p->repeat_penalty, repeat_penalty);
  set(p->typical_p, typical);
  set(p->top_n_sigma, top_n_sigma);
  set(p->xtc_probability, xtc_probability);
  set(p->xtc_threshold, xtc_threshold);
  set(p->dynatemp_range, dynatemp_range);
  set(p->dynatemp_exponent, dynatemp_exp);
  set(p->mirostat, mirostat);
  set(p->mirostat_eta, mirostat_lr);
  set(p->mirostat_tau, mirostat_ent);
  set(p->dry_multiplier, dry_multiplier);
  set(p->dry_base, dry_base);
  set(p->dry_allowed_length, dry_allowed_length);
  set(p->dry_penalty_last_n, dry_penalty_last_n);
  if (tok && p->dry_multiplier > 0.0f)
    p->dry_breakers = server::dry_breaker_tokens(*tok, breaker_strings());
}

void add_sampler_flags(CLI::App* app, SamplerFlags* f, const std::string& d) {
  const std::string g = "Sampling";
  auto number = [&](const char* name, std::optional<float>* v, const std::string& help, double lo,
                    double hi, const char* type = "X") {
    app->add_option(name, *v, d + help)->check(CLI::Range(lo, hi))->type_name(type)->group(g);
  };
  auto integer = [&](const char* name, std::optional<int>* v, const std::string& help, int lo,
                     int hi) {
    app->add_option(name, *v, d + help)->check(CLI::Range(lo, hi))->type_name("N")->group(g);
  };
  number("--temp", &f->temp, "temperature (0.8; 0: greedy)", 0.0, 100.0, "T");
  integer("--top-k", &f->top_k, "keep the K most likely tokens (40; 0: all)", -1, INT32_MAX);
  number("--top-p", &f->top_p, "nucleus sampling threshold (0.95; 1: off)", 0.0, 1.0, "P");
  number("--min-p", &f->min_p, "drop tokens below P x the top probability (0.05)", 0.0, 1.0, "P");
  number("--repeat-penalty", &f->repeat_penalty, "penalty for recent tokens (1: none)", 1e-6, 100.0,
         "R");
  number("--typical", &f->typical, "locally typical sampling (1: off)", 0.0, 1.0, "P");
  number("--top-nsigma", &f->top_n_sigma,
         "keep logits within N standard deviations of the largest (-1: off)", -1.0, 1e6, "N");
  number("--xtc-probability", &f->xtc_probability, "chance of excluding the top choices (0: off)",
         0.0, 1.0, "P");
  number("--xtc-threshold", &f->xtc_threshold, "XTC's probability threshold (0.1)", 0.0, 1.0, "P");
  number("--dynatemp-range", &f->dynatemp_range,
         "dynamic temperature: +- this around --temp by the entropy (0: off)", 0.0, 100.0);
  number("--dynatemp-exp", &f->dynatemp_exp, "dynamic temperature's exponent (1)", 0.0, 100.0);
  integer("--mirostat", &f->mirostat, "Mirostat version 1 or 2 (0: off)", 0, 2);
  number("--mirostat-lr", &f->mirostat_lr, "Mirostat's learning rate eta (0.1)", 0.0, 1.0);
  number("--mirostat-ent", &f->mirostat_ent, "Mirostat's target entropy tau (5)", 0.0, 100.0);
  number("--dry-multiplier", &f->dry_multiplier, "DRY repetition penalty (0: off)", 0.0, 1e6);
  number("--dry-base", &f->dry_base, "DRY's base (1.75)", 1.0, 100.0);
  integer("--dry-allowed-length", &f->dry_allowed_length,
          "repeats DRY lets pass unpenalised, in tokens (2)", 0, INT32_MAX);
  integer("--dry-penalty-last-n", &f->dry_penalty_last_n,
          "tokens DRY searches for repeats (-1: all)", -1, INT32_MAX);
  app->add_option("--dry-sequence-breaker", f->dry_breakers,
                  d + "a string that ends DRY's repeats, repeatable (\\n : \" * by default; "
                      "'none': no breakers)")
      ->type_name("TEXT")
      ->group(g);
}

}  // namespace xtile::cli
