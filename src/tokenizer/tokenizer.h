// Tokenizers read from GGUF metadata (tokenizer.ggml.*), reproducing llama.cpp's token ids:
//   - "llama": SentencePiece-style BPE over UTF-8 characters, merged by score, with the
//     dummy-prefix space, spaces escaped to U+2581 and <0xXX> byte fallback;
//   - "gpt2":  byte-level BPE (GPT-2 byte-to-unicode mapping, merges ranked by order) after a
//     regex pre-tokenizer chosen by tokenizer.ggml.pre (default/gpt-2, llama-bpe, qwen2).
// Special tokens (CONTROL, USER_DEFINED, UNKNOWN) are split out of the text before either
// algorithm runs, as llama.cpp's tokenizer_st_partition does. See docs/TOKENIZER.md.
//
// A Tokenizer is immutable after loading: encode/decode are const and safe to call from several
// threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xtile {

namespace gguf {
class File;
}

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type / sentencepiece's piece types).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

enum class VocabKind { kSpm, kBpe };

namespace tok_internal {
struct Vocab;
class SpmEncoder;
class BpeEncoder;
class Pretokenizer;
}  // namespace tok_internal

class Tokenizer {
 public:
  // Builds the tokenizer described by `file`'s tokenizer.ggml.* keys. Errors (xtile::Error) name
  // the file and the problem: no tokenizer, unknown tokenizer.ggml.model or tokenizer.ggml.pre,
  // arrays of the wrong type or length, duplicate token texts, a BOS/EOS that must be added but
  // is not set.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text -> token ids. `add_bos` is llama.cpp's add_special: it prepends BOS when the vocabulary
  // asks for one (tokenizer.ggml.add_bos_token; default true for "llama", false for "gpt2"
  // except llama-bpe) and appends EOS when tokenizer.ggml.add_eos_token is set. With
  // `parse_special`, exact occurrences of CONTROL/UNKNOWN token texts (longest first) become
  // those tokens; without it they are plain text. USER_DEFINED tokens are always matched, as in
  // llama.cpp and Hugging Face tokenizers. Invalid UTF-8 is accepted and encoded losslessly
  // (byte fallback / byte-level tokens).
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const;

  // The bytes one token stands for, exactly as it sits in the text: SPM "▁" -> " ", byte tokens
  // -> that byte, byte-level BPE characters -> their bytes. A piece may be part of a UTF-8
  // character (use StreamDecoder to print). CONTROL and UNKNOWN tokens give "" unless
  // `render_special`, then their text; UNUSED/UNDEFINED tokens give "". No leading-space rule
  // here (that is decode's and StreamDecoder's job).
  std::string decode_token(int32_t id, bool render_special = false) const;

  // Token ids -> text: the concatenated pieces, and for SPM vocabularies (add_space_prefix) the
  // dummy-prefix space of the first non-control token removed, so that decode(encode(s, bos,
  // false)) == s. See docs/TOKENIZER.md for how this differs from llama.cpp's detokenize.
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;

  // Raw vocabulary entry ("▁Once", "Ġthe", "<0x0A>"), its type and score.
  const std::string& token_text(int32_t id) const;
  TokenType token_type(int32_t id) const;
  float token_score(int32_t id) const;
  // Id of the token whose text is exactly `text`, or -1.
  int32_t find_token(std::string_view text) const;

  int32_t n_vocab() const;
  int32_t bos() const { return bos_; }  // -1 when the vocabulary has none
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }
  int32_t unk() const { return unk_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  // End of generation: EOS, EOT, EOM and the end-of-turn tokens llama.cpp recognises by text
  // (<|im_end|>, <|eot_id|>, <|endoftext|>, <|end_of_text|>, <|eom_id|>, ...).
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const { return eog_; }
  bool is_control(int32_t id) const;

  VocabKind kind() const { return kind_; }
  const std::string& model() const { return model_; }  // "llama" or "gpt2"
  const std::string& pre() const { return pre_; }      // pre-tokenizer name ("" for SPM)
  size_t n_merges() const;

 private:
  Tokenizer();
  struct Fragment {
    int32_t token;          // >= 0: a special token
    std::string_view text;  // otherwise: raw text
  };
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void check_id(int32_t id) const;

  VocabKind kind_ = VocabKind::kSpm;
  std::string model_;
  std::string pre_;
  std::string label_;  // file path, for error messages
  std::unique_ptr<tok_internal::Vocab> vocab_;
  std::unique_ptr<tok_internal::SpmEncoder> spm_;
  std::unique_ptr<tok_internal::BpeEncoder> bpe_;
  std::unique_ptr<tok_internal::Pretokenizer> pretok_;
  std::vector<int32_t> specials_;  // CONTROL/USER_DEFINED/UNKNOWN ids, longest text first
  bool has_user_defined_ = false;
  std::vector<int32_t> eog_;  // sorted
  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
};

// Turns generated tokens into printable text one token at a time: holds back the bytes of a
// UTF-8 character that the next token will complete, and applies decode()'s leading-space rule,
// so that the concatenation of every push() and the final flush() equals decode(ids).
class StreamDecoder {
 public:
  // `at_sequence_start`: the first token pushed starts the sequence (or follows only control
  // tokens such as BOS), so its SPM dummy-prefix space is removed. Pass false to continue after
  // text that was printed some other way.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool at_sequence_start = true,
                         bool render_special = false);
  // Bytes that can be written now (possibly empty).
  std::string push(int32_t id);
  // Whatever is held back (an unfinished UTF-8 sequence at the end of the stream).
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool strip_pending_;
  bool render_special_;
  std::string pending_;
};

}  // namespace xtile
