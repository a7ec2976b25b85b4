// libFuzzer target for llama-server's `grammar` field (build and run: fuzz/run.sh 30 gbnf). An
// input is a grammar's text, then a NUL byte and a reply (without a NUL, the grammar alone):
// - the parser and compiler either build a grammar or throw xtile::Error (nothing else: no
//   crash, hang or other exception on any text, however hostile);
// - the start state is made, and each step taken or refused, or an Error thrown (the engine's
//   limits: never a refusal, which would leave a sampler a dead end);
// - the reply fed byte by byte: feed(), accepts() and take() agree on how much is taken; after
//   each byte taken, some byte continues unless the text is complete (no dead end for a
//   sampler), and once complete every byte is refused;
// - after each byte taken, shortest_completion() is 0 exactly where the text may end, and else
//   the least over the next bytes of theirs (one more where a byte ends a character);
// - for grammars of up to 2000 elements and replies of up to 64 characters, at each character's
//   end the engine agrees with the tests' Earley recognizer (tests/server/gbnf_oracle.h) on
//   whether the prefix goes on and whether it is a whole text.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"
#include "gbnf_oracle.h"
#include "server/gbnf_prefix.h"
#include "tokenizer/utf8.h"

namespace {

using xtile::server::GbnfGrammar;
using xtile::server::GbnfPrefix;
namespace tok_internal = xtile::tok_internal;

[[noreturn]] void finding(const char* what, std::string_view input) {
  std::fprintf(stderr, "gbnf_fuzz: %s: '%.*s'\n", what, static_cast<int>(input.size()),
               input.data());
  std::abort();
}

// The code points of text up to its first invalid byte, and how many bytes they take.
std::u32string code_points(std::string_view text, size_t* valid_bytes) {
  std::u32string out;
  size_t i = 0;
  for (tok_internal::Utf8Char ch;
       i < text.size() && (ch = tok_internal::decode_utf8_strict(text, i)).len; i += ch.len)
    out += static_cast<char32_t>(ch.cp);
  *valid_bytes = i;
  return out;
}

// shortest_completion() obeys its own equation: 0 exactly where the text may end, else the
// least, over the bytes that may come next, of theirs, plus one where the byte ends a character
// (the character being read counts among the fewest). `left`: bytes still to come of it.
void check_shortest(const GbnfPrefix& p, int left, std::string_view input) {
  const uint32_t s = p.shortest_completion();
  if (s == UINT32_MAX) return;  // saturated
  if ((s == 0) != (left == 0 && p.may_end())) finding("shortest_completion() and may_end()", input);
  if (s == 0) return;
  uint64_t best = UINT64_MAX;
  for (int b = 0; b < 256; ++b) {
    GbnfPrefix next = p;
    if (!next.feed(static_cast<uint8_t>(b))) continue;
    const bool ends_character = left == 1 || (left == 0 && b < 0x80);
    best = std::min<uint64_t>(best, uint64_t{next.shortest_completion()} + ends_character);
  }
  if (best != s) finding("shortest_completion() is not the least over the next bytes", input);
}

void check_reply(const GbnfGrammar& g, std::string_view reply, std::string_view input) {
  const auto start = std::make_unique<GbnfPrefix>(&g);  // may throw: the engine's limits
  GbnfPrefix p = *start;
  size_t taken = 0;
  int left = 0;  // bytes still to come of the character being read
  while (taken < reply.size() && p.feed(static_cast<uint8_t>(reply[taken]))) {
    const auto byte = static_cast<uint8_t>(reply[taken]);
    left = byte >= 0xf0 ? 3 : byte >= 0xe0 ? 2 : byte >= 0xc0 ? 1 : left > 0 ? left - 1 : 0;
    ++taken;
    check_shortest(p, left, input);
    if (p.complete()) {
      for (int b = 0; b < 256; ++b)
        if (p.accepts(std::string(1, static_cast<char>(b)))) finding("a byte after the end", input);
    } else {
      bool some = false;
      for (int b = 0; b < 256 && !some; ++b) some = p.accepts(std::string(1, static_cast<char>(b)));
      if (!some) finding("no byte continues the prefix taken", input);
    }
  }
  const bool whole = taken == reply.size();
  if (start->accepts(reply) != whole) finding("accepts() disagrees with feed()", input);
  GbnfPrefix t = *start;
  if (t.take(reply) != whole) finding("take() disagrees with feed()", input);

  // Against the Earley recognizer, on grammars and replies small enough for it.
  size_t elements = 0;
  for (uint32_t r = 0; r < g.rule_count(); ++r)
    for (uint32_t a : g.alternatives(r))
      for (uint32_t e = a;; ++e) {
        ++elements;
        if (g.element(e).kind == GbnfGrammar::Kind::kEnd) break;
      }
  size_t valid = 0;
  const std::u32string cps = code_points(reply, &valid);
  if (elements > 2000 || cps.size() > 64) return;
  const xtile::server::test::EarleyRecognizer earley(g);
  GbnfPrefix q = *start;
  std::u32string read;
  size_t at = 0;  // bytes of reply fed to q
  for (char32_t c : cps) {
    const size_t n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;  // its bytes
    bool took = true;
    for (size_t k = 0; k < n && took; ++k) took = q.feed(static_cast<uint8_t>(reply[at + k]));
    at += n;
    read += c;
    const auto [viable, is_whole] = earley.check(read);
    if (took != viable) finding("the engine and the Earley recognizer disagree on a prefix", input);
    if (!took) return;
    if (q.may_end() != is_whole)
      finding("the engine and the Earley recognizer disagree on a whole text", input);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view grammar_text = input.substr(0, nul);
  std::unique_ptr<GbnfGrammar> g;
  try {
    g = std::make_unique<GbnfGrammar>(grammar_text);
    if (nul != std::string_view::npos) check_reply(*g, input.substr(nul + 1), input);
  } catch (const xtile::Error&) {
    return 0;  // a grammar refused, or a step past the engine's limits: an Error, as it must be
  }
  return 0;
}
