// Small UTF-8 helpers shared by the tokenizers and the streaming decoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace xtile::tok_internal {

// Length of the UTF-8 sequence that starts with `lead`, judged from its high nibble only, as
// llama.cpp's unicode_len_utf8 does: the SPM and BPE symbol splitters must cut the text at the
// same places as llama.cpp (even for invalid input) to produce the same tokens. A continuation
// byte (10xxxxxx) counts as a sequence of its own.
inline size_t utf8_len_from_lead(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// Length of the character at s[i]: utf8_len_from_lead's answer when the announced continuation
// bytes are all present and well-formed, else 1. Equal to llama.cpp's cut for valid UTF-8; on
// invalid input it keeps a broken lead byte from swallowing the bytes of the next character
// (e.g. an escaped space), so that decoding gives back exactly the input.
inline size_t utf8_char_len(std::string_view s, size_t i) {
  const size_t len = utf8_len_from_lead(static_cast<uint8_t>(s[i]));
  if (len == 1 || i + len > s.size()) return 1;
  for (size_t k = 1; k < len; ++k) {
    if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return 1;
  }
  return len;
}

// The character at s[i] when its bytes are strictly valid UTF-8 (RFC 3629: no overlong forms,
// surrogates or code points past U+10FFFF): its code point and length; length 0 otherwise
// (the grammars' parsers refuse such text rather than cut it as the tokenizers must).
struct Utf8Char {
  uint32_t cp = 0;
  size_t len = 0;
};
inline Utf8Char decode_utf8_strict(std::string_view s, size_t i) {
  const auto c = static_cast<uint8_t>(s[i]);
  size_t len = 0;
  if (c < 0x80)
    len = 1;
  else if (c >= 0xc2 && c <= 0xdf)
    len = 2;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4;
  if (len == 0 || i + len > s.size()) return {};
  uint32_t cp = len == 1 ? c : c & (0x7fu >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xc0) != 0x80) return {};
    cp = cp << 6 | (b & 0x3fu);
  }
  static constexpr uint32_t kMinOf[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinOf[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return {};
  return {cp, len};
}

// The value of a hexadecimal digit (the escapes \xHH, \uHHHH of JSON, GBNF and patterns), or -1.
inline int hex_digit_value(uint32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

// Appends the UTF-8 encoding of code point `cp` (< 0x110000).
inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Number of bytes at the end of `s` that begin a multi-byte sequence which is not finished yet
// (a lead byte followed by fewer continuation bytes than it announces). A streaming printer holds
// these back until the next token completes the character; anything else (complete or invalid)
// can be written at once, since more bytes cannot repair an invalid sequence.
inline size_t utf8_incomplete_tail(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t c = static_cast<uint8_t>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 0;
    if ((c & 0xE0) == 0xC0) {
      need = 2;
    } else if ((c & 0xF0) == 0xE0) {
      need = 3;
    } else if ((c & 0xF8) == 0xF0) {
      need = 4;
    }
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace xtile::tok_internal
