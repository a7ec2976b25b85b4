// The GBNF tests' independent check of GbnfPrefix: an Earley recognizer over the compiled
// grammar's rules. It reads whole code points with a chart per position (no stacks, no UTF-8
// bytes), and says whether a text is the beginning of one of the grammar's texts (its chart is
// not empty: every rule left after compiling can be completed) and whether it is one.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "server/gbnf.h"

namespace xtile::server::test {

class EarleyRecognizer {
 public:
  explicit EarleyRecognizer(const GbnfGrammar& g) : g_(g) {}

  // {the text begins one of the grammar's texts, the text is one}.
  std::pair<bool, bool> check(const std::u32string& text) const {
    using Kind = GbnfGrammar::Kind;
    std::vector<Chart> charts(text.size() + 1);
    for (uint32_t alt : g_.alternatives(g_.root())) add(&charts[0], {g_.root(), alt, 0});
    for (size_t k = 0; k <= text.size(); ++k) {
      Chart& chart = charts[k];
      // Predict and complete until nothing is added (a rule completed in the chart it started
      // in, an empty one, advances items that may be predicted after it).
      for (size_t before = 0; before != chart.items.size();) {
        before = chart.items.size();
        for (size_t i = 0; i < chart.items.size(); ++i) {
          const Item it = chart.items[i];
          const GbnfGrammar::Element& e = g_.element(it.dot);
          if (e.kind == Kind::kRef) {
            for (uint32_t alt : g_.alternatives(e.arg))
              add(&chart, {e.arg, alt, static_cast<uint32_t>(k)});
          } else if (e.kind == Kind::kEnd) {
            const Chart& from = charts[it.origin];
            for (size_t j = 0; j < from.items.size(); ++j) {
              const Item w = from.items[j];
              const GbnfGrammar::Element& we = g_.element(w.dot);
              if (we.kind == Kind::kRef && we.arg == it.rule)
                add(&chart, {w.rule, w.dot + 1, w.origin});
            }
          }
        }
      }
      if (k == text.size()) break;
      for (const Item& it : chart.items) {
        const GbnfGrammar::Element& e = g_.element(it.dot);
        if (e.kind == Kind::kChar && g_.char_class(e.arg).contains(text[k]))
          add(&charts[k + 1], {it.rule, it.dot + 1, it.origin});
      }
      if (charts[k + 1].items.empty()) return {false, false};
    }
    bool whole = false;
    for (const Item& it : charts.back().items)
      whole = whole ||
              (it.rule == g_.root() && it.origin == 0 && g_.element(it.dot).kind == Kind::kEnd);
    return {!charts.back().items.empty(), whole};
  }

 private:
  struct Item {
    uint32_t rule, dot, origin;  // dot: the next element's position
  };
  struct Chart {
    std::vector<Item> items;
    std::set<std::tuple<uint32_t, uint32_t, uint32_t>> seen;
  };
  static void add(Chart* c, Item it) {
    if (c->seen.insert({it.rule, it.dot, it.origin}).second) c->items.push_back(it);
  }

  const GbnfGrammar& g_;
};

}  // namespace xtile::server::test
