#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "gguf/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/spm.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace xtile {
namespace {

using tok_internal::Vocab;

constexpr std::string_view kSpaceEscape = "\xe2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

void replace_all(std::string* s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s->size());
  size_t pos = 0;
  for (;;) {
    const size_t hit = s->find(from, pos);
    if (hit == std::string::npos) break;
    out.append(*s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(*s, pos, std::string::npos);
  *s = std::move(out);
}

// Reads an optional token id key. Like llama.cpp, a value outside [0, n) (e.g. the u32 -1 that
// converters write for "none") leaves the default in place; a default outside the vocabulary
// becomes -1.
int32_t read_token_id(const gguf::File& f, std::string_view key, int32_t n, int32_t fallback) {
  if (fallback >= n) fallback = -1;
  const gguf::Value* v = f.find(key);
  if (!v) return fallback;
  if (const auto* u = std::get_if<uint64_t>(&v->data)) {
    return *u < static_cast<uint64_t>(n) ? static_cast<int32_t>(*u) : fallback;
  }
  if (const auto* i = std::get_if<int64_t>(&v->data)) {
    return *i >= 0 && *i < n ? static_cast<int32_t>(*i) : fallback;
  }
  fail(f.path(), ": key '", key, "' has type ", gguf::value_type_name(v->type),
       ", expected an integer token id");
}

bool read_bool(const gguf::File& f, std::string_view key, bool fallback) {
  return f.has(key) ? f.get_bool(key) : fallback;
}

// Scores may be stored as f32 (usual) or i32 (llama.cpp accepts both).
std::vector<float> read_scores(const gguf::File& f, std::string_view key) {
  const gguf::Array& a = f.get_array(key);
  if (a.elem_type == gguf::ValueType::F32 || a.elem_type == gguf::ValueType::F64) {
    return f.get_f32_array(key);
  }
  std::vector<int32_t> ints = f.get_i32_array(key);
  return std::vector<float>(ints.begin(), ints.end());
}

// Token texts llama.cpp treats as end of generation whatever their ids (llama-vocab.cpp).
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>",    "<|im_end|>",    "<|end|>",          "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>",    "<EOT>",         "_<EOT>",           "<|end_of_text|>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",  // DeepSeek
    "<|fim_pad|>",   "<|repo_name|>", "<|fim_repo|>",     "<|file_sep|>",
};

bool is_special_type(TokenType t) {
  return t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown;
}

// A byte token's value from its text "<0xXX>"; -1 when the text is not of that form.
int parse_byte_token(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(s[3]), lo = hex(s[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& f) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->label_ = f.path();
  const std::string& label = t->label_;
  if (!f.has("tokenizer.ggml.model")) {
    fail(label, ": no tokenizer in this file (missing key 'tokenizer.ggml.model')");
  }
  t->model_ = f.get_string("tokenizer.ggml.model");
  if (t->model_ == "llama") {
    t->kind_ = VocabKind::kSpm;
  } else if (t->model_ == "gpt2") {
    t->kind_ = VocabKind::kBpe;
  } else {
    fail(label, ": unsupported tokenizer model '", t->model_,
         "' (tokenizer.ggml.model); supported: 'llama' (SentencePiece), 'gpt2' (byte-level BPE)");
  }

  auto vocab = std::make_unique<Vocab>();
  vocab->text = f.get_string_array("tokenizer.ggml.tokens");
  const size_t n = vocab->text.size();
  if (n == 0) fail(label, ": tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(INT32_MAX)) fail(label, ": tokenizer.ggml.tokens is too long");
  const int32_t n_vocab = static_cast<int32_t>(n);

  if (f.has("tokenizer.ggml.scores")) {
    vocab->score = read_scores(f, "tokenizer.ggml.scores");
    if (vocab->score.size() < n) {
      fail(label, ": tokenizer.ggml.scores has ", vocab->score.size(), " entries for ", n,
           " tokens");
    }
    vocab->score.resize(n);
  } else {
    vocab->score.assign(n, 0.0f);
  }
  vocab->type.assign(n, TokenType::kNormal);
  if (f.has("tokenizer.ggml.token_type")) {
    std::vector<int32_t> types = f.get_i32_array("tokenizer.ggml.token_type");
    if (types.size() < n) {
      fail(label, ": tokenizer.ggml.token_type has ", types.size(), " entries for ", n,
           " tokens");
    }
    for (size_t i = 0; i < n; ++i) {
      vocab->type[i] = types[i] >= 1 && types[i] <= 6 ? static_cast<TokenType>(types[i])
                                                      : TokenType::kUndefined;
    }
  }

  vocab->to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string& word = vocab->text[i];
    // As llama.cpp: an empty entry could never be produced by encoding, but it must not collide.
    if (word.empty()) word = "[EMPTY_" + std::to_string(i) + "]";
    auto [it, inserted] = vocab->to_id.emplace(word, static_cast<int32_t>(i));
    if (!inserted) {
      fail(label, ": duplicate token in vocabulary: ", gguf::detail::quoted(word), " has ids ",
           it->second, " and ", i);
    }
  }

  // Defaults per model, then the file's keys (llama.cpp's llama_vocab::impl::load).
  const bool spm = t->kind_ == VocabKind::kSpm;
  bool ignore_merges = false;
  bool add_bos_default = spm;
  if (spm) {
    t->pre_.clear();  // SentencePiece has no pre-tokenizer; tokenizer.ggml.pre is ignored
  } else {
    t->pre_ = f.get_string_or("tokenizer.ggml.pre", "default");
    t->pretok_ =
        tok_internal::Pretokenizer::create(t->pre_, label, &ignore_merges, &add_bos_default);
  }
  t->add_space_prefix_ = read_bool(f, "tokenizer.ggml.add_space_prefix", spm);
  t->add_bos_ = read_bool(f, "tokenizer.ggml.add_bos_token", add_bos_default);
  t->add_eos_ = read_bool(f, "tokenizer.ggml.add_eos_token", false);
  // SentencePiece files rely on llama.cpp's defaults (<unk>=0, <s>=1, </s>=2) when keys are
  // missing; for BPE there is no sensible default, so a missing id stays unset.
  t->bos_ = read_token_id(f, "tokenizer.ggml.bos_token_id", n_vocab, spm ? 1 : -1);
  t->eos_ = read_token_id(f, "tokenizer.ggml.eos_token_id", n_vocab, spm ? 2 : -1);
  t->unk_ = read_token_id(f, "tokenizer.ggml.unknown_token_id", n_vocab, spm ? 0 : -1);
  t->eot_ = read_token_id(f, "tokenizer.ggml.eot_token_id", n_vocab, -1);
  t->eom_ = read_token_id(f, "tokenizer.ggml.eom_token_id", n_vocab, -1);
  if (t->add_bos_ && t->bos_ < 0) {
    fail(label, ": tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not "
                "set");
  }
  if (t->add_eos_ && t->eos_ < 0) {
    fail(label, ": tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not "
                "set");
  }

  // End-of-generation set; recognised end-of-turn texts are made CONTROL, as llama.cpp does for
  // converters that forgot to mark them.
  for (std::string_view text : kEogTexts) {
    const int32_t id = vocab->find(text);
    if (id < 0) continue;
    t->eog_.push_back(id);
    if (vocab->type[id] != TokenType::kControl) vocab->type[id] = TokenType::kControl;
    if (t->eot_ < 0 && (text == "<|eot_id|>" || text == "<|im_end|>" || text == "<|end|>" ||
                        text == "<end_of_turn>" || text == "<|endoftext|>" || text == "<EOT>")) {
      t->eot_ = id;
    }
  }
  for (int32_t id : {t->eos_, t->eot_, t->eom_}) {
    if (id >= 0) t->eog_.push_back(id);
  }
  std::sort(t->eog_.begin(), t->eog_.end());
  t->eog_.erase(std::unique(t->eog_.begin(), t->eog_.end()), t->eog_.end());

  for (int32_t id = 0; id < n_vocab; ++id) {
    if (is_special_type(vocab->type[id])) t->specials_.push_back(id);
    if (vocab->type[id] == TokenType::kUserDefined) t->has_user_defined_ = true;
  }
  // Longest first, so that a special token is never cut by a shorter one it contains; ids break
  // ties so the order (and thus the result) does not depend on the sort implementation.
  std::sort(t->specials_.begin(), t->specials_.end(), [&](int32_t a, int32_t b) {
    const size_t la = vocab->text[a].size(), lb = vocab->text[b].size();
    return la != lb ? la > lb : a < b;
  });

  t->vocab_ = std::move(vocab);
  if (spm) {
    t->spm_ = std::make_unique<tok_internal::SpmEncoder>(*t->vocab_, t->unk_, label);
  } else {
    if (!f.has("tokenizer.ggml.merges")) {
      fail(label, ": byte-level BPE tokenizer without merges (missing key "
                  "'tokenizer.ggml.merges')");
    }
    t->bpe_ = std::make_unique<tok_internal::BpeEncoder>(
        *t->vocab_, f.get_string_array("tokenizer.ggml.merges"), ignore_merges, t->unk_, label);
  }
  return t;
}

int32_t Tokenizer::n_vocab() const { return vocab_->size(); }
size_t Tokenizer::n_merges() const { return bpe_ ? bpe_->n_merges() : 0; }

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_->size()) {
    fail("token id ", id, " is out of range (the vocabulary has ", vocab_->size(), " tokens)");
  }
}

const std::string& Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return vocab_->text[id];
}

TokenType Tokenizer::token_type(int32_t id) const {
  check_id(id);
  return vocab_->type[id];
}

float Tokenizer::token_score(int32_t id) const {
  check_id(id);
  return vocab_->score[id];
}

int32_t Tokenizer::find_token(std::string_view text) const { return vocab_->find(text); }

bool Tokenizer::is_eog(int32_t id) const {
  return std::binary_search(eog_.begin(), eog_.end(), id);
}

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < vocab_->size() && vocab_->type[id] == TokenType::kControl;
}

std::vector<Tokenizer::Fragment> Tokenizer::partition(std::string_view text,
                                                      bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, text});
  if (!parse_special && !has_user_defined_) return frags;
  // llama.cpp's tokenizer_st_partition: for each special token, longest first, cut every raw
  // fragment at each of its occurrences. O(specials x text), with a memchr-speed find.
  std::vector<Fragment> next;
  for (int32_t id : specials_) {
    const TokenType type = vocab_->type[id];
    if (!parse_special && type != TokenType::kUserDefined) continue;
    const std::string_view needle = vocab_->text[id];
    next.clear();
    bool changed = false;
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      size_t pos = 0;
      for (;;) {
        const size_t hit = fr.text.find(needle, pos);
        if (hit == std::string_view::npos) break;
        if (hit > pos) next.push_back({-1, fr.text.substr(pos, hit - pos)});
        next.push_back({id, {}});
        pos = hit + needle.size();
        changed = true;
      }
      if (pos < fr.text.size()) next.push_back({-1, fr.text.substr(pos)});
    }
    if (changed) frags.swap(next);
  }
  return frags;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  const std::vector<Fragment> frags = partition(text, parse_special);
  if (add_bos && add_bos_) out.push_back(bos_);
  if (kind_ == VocabKind::kSpm) {
    // The dummy prefix goes before the text at the start and after every special token, as
    // SentencePiece would see each piece of text as a sentence of its own.
    bool prev_special = true;
    std::string buf;
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        out.push_back(fr.token);
        prev_special = true;
        continue;
      }
      buf.clear();
      if (add_space_prefix_ && prev_special) buf += ' ';
      buf.append(fr.text);
      replace_all(&buf, " ", kSpaceEscape);
      spm_->encode(buf, &out);
      prev_special = false;
    }
  } else {
    std::vector<std::string_view> words;
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        out.push_back(fr.token);
        continue;
      }
      words.clear();
      pretok_->split(fr.text, &words);
      for (std::string_view w : words) bpe_->encode_word(w, &out);
    }
  }
  if (add_bos && add_eos_) out.push_back(eos_);
  return out;
}

std::string Tokenizer::decode_token(int32_t id, bool render_special) const {
  check_id(id);
  const std::string& text = vocab_->text[id];
  switch (vocab_->type[id]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      return render_special ? text : std::string();
    case TokenType::kUserDefined:
      return text;
    case TokenType::kNormal:
      if (kind_ == VocabKind::kSpm) {
        std::string s = text;
        replace_all(&s, kSpaceEscape, " ");
        return s;
      }
      return tok_internal::byte_level_decode(text);
    case TokenType::kByte: {
      const int b = parse_byte_token(text);
      // A BYTE-typed entry not spelled <0xXX> is taken as the bytes it spells.
      return b < 0 ? text : std::string(1, static_cast<char>(b));
    }
    case TokenType::kUnused:
    case TokenType::kUndefined:
      return std::string();
  }
  return std::string();
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  StreamDecoder dec(*this, /*at_sequence_start=*/true, render_special);
  for (int32_t id : ids) out += dec.push(id);
  out += dec.flush();
  return out;
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool at_sequence_start,
                             bool render_special)
    : tok_(tokenizer),
      strip_pending_(at_sequence_start && tokenizer.kind() == VocabKind::kSpm &&
                     tokenizer.add_space_prefix()),
      render_special_(render_special) {}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tok_.decode_token(id, render_special_);
  if (strip_pending_ && !tok_.is_control(id)) {
    // The first text token after the start (or after BOS) carries the dummy-prefix space that
    // encode() added; SentencePiece removes it on decode.
    if (!piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    strip_pending_ = false;
  }
  pending_ += piece;
  const size_t hold = tok_internal::utf8_incomplete_tail(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamDecoder::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace xtile
