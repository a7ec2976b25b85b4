#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/error.h"

namespace xtile::tok_internal {
namespace {

// Unicode White_Space, the set llama.cpp's unicode tables call whitespace. PCRE2's UCP \s also
// matches U+180E, which White_Space dropped in Unicode 6.3, so \s is spelled out instead.
constexpr const char* kWhiteSpace =
    R"(\t\n\x0B\f\r\x20\x{85}\x{A0}\x{1680}\x{2000}-\x{200A})"
    R"(\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// Rewrites \s and \S (inside or outside a character class) to the explicit set. A negated class
// [^\s...] stays negated because \s inside it becomes the set's members. \S only appears outside
// classes in our patterns; inside a class it would need a different rewrite, so it is refused.
std::string expand_whitespace(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      if (n == 's') {
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (n == 'S') {
        if (in_class) fail("pre-tokenizer pattern uses \\S inside a character class");
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else {
        out += c;
        out += n;
      }
      ++i;
      continue;
    }
    if (c == '[') in_class = true;
    if (c == ']') in_class = false;
    out += c;
  }
  return out;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0) return "error " + std::to_string(code);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

const char* Pretokenizer::supported_names() {
  return "default, gpt-2, llama-bpe, llama3, llama-v3, qwen2, deepseek-r1-qwen";
}

std::unique_ptr<Pretokenizer> Pretokenizer::create(const std::string& name,
                                                   const std::string& label,
                                                   bool* ignore_merges, bool* add_bos_default) {
  const char* pattern = nullptr;
  *ignore_merges = false;
  *add_bos_default = false;
  // llama.cpp's "default" runs four regexes in a row (a punctuation splitter, GPT-2's pattern,
  // digit runs, digit triples), a leftover of its first BPE port; GPT-2's own pattern is what a
  // "default" GPT-2-style vocabulary was trained with, so both names use it.
  if (name == "default" || name == "gpt-2") {
    pattern = kGpt2Pattern;
  } else if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") {
    pattern = kLlama3Pattern;
    *ignore_merges = true;
    *add_bos_default = true;
  } else if (name == "qwen2" || name == "deepseek-r1-qwen") {
    pattern = kQwen2Pattern;
  } else {
    fail(label, ": unsupported pre-tokenizer '", name, "' (tokenizer.ggml.pre); supported: ",
         supported_names());
  }
  std::unique_ptr<Pretokenizer> p(new Pretokenizer());
  p->label_ = label;
  p->pattern_ = expand_whitespace(pattern);
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  p->code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p->pattern_.data()), p->pattern_.size(),
                           PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_offset,
                           nullptr);
  if (!p->code_) {
    fail(label, ": cannot compile the '", name, "' pre-tokenizer regex at offset ", err_offset,
         ": ", pcre2_message(err));
  }
  // JIT is an optimisation only: when it is unavailable pcre2_match interprets the pattern.
  pcre2_jit_compile(p->code_, PCRE2_JIT_COMPLETE);
  return p;
}

Pretokenizer::~Pretokenizer() {
  if (code_) pcre2_code_free(code_);
}

void Pretokenizer::split(std::string_view text, std::vector<std::string_view>* words) const {
  if (text.empty()) return;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
  if (!md) fail(label_, ": out of memory for the pre-tokenizer");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc = pcre2_match(code_, subject, text.size(), pos, 0, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail(label_, ": pre-tokenizer regex failed: ", pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t start = ov[0], end = ov[1];
    // Every alternative consumes at least one character, so an empty match means a broken
    // pattern; stopping here is better than looping forever.
    if (end <= start) fail(label_, ": pre-tokenizer regex matched empty text at byte ", start);
    if (start > pos) words->push_back(text.substr(pos, start - pos));
    words->push_back(text.substr(start, end - start));
    pos = end;
  }
  if (pos < text.size()) words->push_back(text.substr(pos));
}

}  // namespace xtile::tok_internal
