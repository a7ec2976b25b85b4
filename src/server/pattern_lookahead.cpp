#include "server/pattern_lookahead.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "server/gbnf_prefix.h"
#include "tokenizer/utf8.h"

namespace xtile::server {

namespace {
namespace pattern_lookahead {  // unity batches: CMakeLists.txt

// The code points no part's class tells apart: [starts[i], starts[i + 1]) for each i (the last
// one up to U+10FFFF), surrogates left out (no UTF-8 text holds them).
std::vector<uint32_t> interval_starts(const GbnfGrammar& rest,
                                      std::span<const Lookahead> lookaheads) {
  std::vector<uint32_t> cuts = {0, 0xd800, 0xe000};
  const auto add = [&](const GbnfGrammar& g) {
    for (size_t i = 0; i < g.class_count(); ++i) {
      for (auto [lo, hi] : g.char_class(i).ranges()) {
        cuts.push_back(lo);
        if (hi < CodePointSet::kMax) cuts.push_back(hi + 1);
      }
    }
  };
  add(rest);
  for (const Lookahead& l : lookaheads) add(*l.grammar);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

// One state of the automaton: REST's engine and each lookahead's (none: a negative one that
// refused, satisfied).
struct Parts {
  GbnfPrefix rest;
  std::vector<std::optional<GbnfPrefix>> looks;

  std::string key() const {
    std::string k;
    rest.memo_key(&k);
    for (const auto& l : looks) {
      k += '|';
      if (l) {
        k += '+';
        l->memo_key(&k);
      }
    }
    return k;
  }
  bool accepts(std::span<const Lookahead> lookaheads) const {
    if (!rest.may_end()) return false;
    for (size_t i = 0; i < looks.size(); ++i) {
      if (!looks[i]) continue;
      if (looks[i]->may_end() == lookaheads[i].negative) return false;
    }
    return true;
  }
  // The parts after the character `text`, or none when the path ends there.
  std::optional<Parts> after(std::string_view text, std::span<const Lookahead> lookaheads) const {
    Parts next = *this;
    if (!next.rest.take(text)) return std::nullopt;
    for (size_t i = 0; i < next.looks.size(); ++i) {
      auto& l = next.looks[i];
      if (l && !l->take(text)) {
        if (!lookaheads[i].negative) return std::nullopt;
        l.reset();
      }
    }
    return next;
  }
};

std::string code_point(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\U%08X", cp);
  return buf;
}

}  // namespace pattern_lookahead
}  // namespace

std::string lookahead_gbnf(const GbnfGrammar& rest, std::span<const Lookahead> lookaheads) {
  using namespace pattern_lookahead;  // this file's helpers
  const std::vector<uint32_t> starts = interval_starts(rest, lookaheads);
  const auto interval_end = [&](size_t i) {
    return i + 1 < starts.size() ? starts[i + 1] - 1 : CodePointSet::kMax;
  };
  std::vector<std::string> letters(starts.size());  // each interval's first code point, in UTF-8
  for (size_t i = 0; i < starts.size(); ++i)
    if (starts[i] != 0xd800) tok_internal::append_utf8(letters[i], starts[i]);

  Parts start{GbnfPrefix(&rest), {}};
  for (const Lookahead& l : lookaheads) start.looks.emplace_back(GbnfPrefix(l.grammar));
  std::vector<Parts> states = {start};
  std::unordered_map<std::string, uint32_t> ids = {{start.key(), 0}};
  struct Edge {
    uint32_t interval, to;
  };
  std::vector<std::vector<Edge>> edges(1);
  uint64_t steps = 0;
  for (uint32_t s = 0; s < states.size(); ++s) {
    for (uint32_t i = 0; i < letters.size(); ++i) {
      if (letters[i].empty()) continue;  // the surrogates
      if (++steps > kMaxLookaheadSteps)
        fail("its lookaheads make an automaton of more than ", kMaxLookaheadSteps,
             " steps to build");
      std::optional<Parts> next = states[s].after(letters[i], lookaheads);
      if (!next) continue;
      auto [at, fresh] = ids.emplace(next->key(), static_cast<uint32_t>(states.size()));
      if (fresh) {
        if (states.size() == kMaxLookaheadStates)
          fail("its lookaheads make an automaton of more than ", kMaxLookaheadStates, " states");
        states.push_back(std::move(*next));
        edges.emplace_back();
      }
      edges[s].push_back({i, at->second});
    }
  }

  // The states from which an accepting one is reachable (backwards from the accepting ones).
  std::vector<std::vector<uint32_t>> into(states.size());
  for (uint32_t s = 0; s < states.size(); ++s)
    for (const Edge& e : edges[s]) into[e.to].push_back(s);
  std::vector<bool> live(states.size(), false);
  std::vector<uint32_t> todo;
  for (uint32_t s = 0; s < states.size(); ++s)
    if (states[s].accepts(lookaheads)) {
      live[s] = true;
      todo.push_back(s);
    }
  while (!todo.empty()) {
    const uint32_t s = todo.back();
    todo.pop_back();
    for (uint32_t p : into[s])
      if (!live[p]) {
        live[p] = true;
        todo.push_back(p);
      }
  }
  if (!live[0]) fail("no string matches it and its lookaheads");

  // A rule per live state: per target, the class of the intervals that lead there; "" where it
  // accepts.
  std::string out = "root ::= s0\n";
  for (uint32_t s = 0; s < states.size(); ++s) {
    if (!live[s]) continue;
    // Appended piece by piece: g++ 12 warns (-Wrestrict) on + chains of short literals here.
    out.append("s").append(std::to_string(s)).append(" ::=");
    std::vector<Edge> kept;
    for (const Edge& e : edges[s])
      if (live[e.to]) kept.push_back(e);
    std::stable_sort(kept.begin(), kept.end(),
                     [](const Edge& a, const Edge& b) { return a.to < b.to; });
    bool first = true;
    for (size_t k = 0; k < kept.size();) {
      std::string cls = "[";
      const uint32_t to = kept[k].to;
      for (; k < kept.size() && kept[k].to == to; ++k) {
        const uint32_t lo = starts[kept[k].interval], hi = interval_end(kept[k].interval);
        cls.append(code_point(lo));
        if (hi != lo) cls.append("-").append(code_point(hi));
      }
      out.append(first ? " " : " | ").append(cls).append("] s").append(std::to_string(to));
      first = false;
    }
    if (states[s].accepts(lookaheads)) out.append(first ? " " : " | ").append("\"\"");
    out.append("\n");
  }
  return out;
}

}  // namespace xtile::server
