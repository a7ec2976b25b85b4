// Regex pre-tokenizers of the byte-level BPE vocabularies (tokenizer.ggml.pre), run with PCRE2
// (UTF + UCP, JIT when available). The text is cut into the regex's matches; text between
// matches (only possible for invalid UTF-8, which never matches) becomes a pre-token of its own,
// as llama.cpp's unicode_regex_split keeps unmatched text.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;

namespace xtile::tok_internal {

class Pretokenizer {
 public:
  // `name` is tokenizer.ggml.pre. Fails, naming it, when it is not one of supported_names().
  // Sets *ignore_merges and *add_bos_default to what llama.cpp uses for that pre-tokenizer.
  static std::unique_ptr<Pretokenizer> create(const std::string& name, const std::string& label,
                                              bool* ignore_merges, bool* add_bos_default);
  static const char* supported_names();
  ~Pretokenizer();
  Pretokenizer(const Pretokenizer&) = delete;
  Pretokenizer& operator=(const Pretokenizer&) = delete;

  // Appends the pre-tokens of `text` (views into it, in order, covering it exactly).
  void split(std::string_view text, std::vector<std::string_view>* words) const;
  const std::string& pattern() const { return pattern_; }

 private:
  Pretokenizer() = default;
  std::string pattern_;
  std::string label_;
  pcre2_real_code_8* code_ = nullptr;
};

// The patterns, spelled with \s/\S as in the tokenizer.json files; Pretokenizer expands \s to
// the Unicode White_Space set (llama.cpp's whitespace table) before compiling.
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr const char* kLlama3Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|)"
    R"(\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* kQwen2Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|)"
    R"(\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace xtile::tok_internal
