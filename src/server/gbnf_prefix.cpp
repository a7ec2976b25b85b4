#include "server/gbnf_prefix.h"

#include <algorithm>

#include "base/error.h"

namespace xtile::server {

namespace {
using Kind = GbnfGrammar::Kind;
namespace gbnf_prefix {  // unity batches: CMakeLists.txt
thread_local uint64_t work_total = 0;
}  // namespace gbnf_prefix
}  // namespace

uint64_t gbnf_work() {
  using namespace gbnf_prefix;  // this file's helpers
  return work_total;
}

void GbnfPrefix::over_limits() const {
  fail("grammar: the text passes the engine's limits (", kMaxStacks, " stacks, ", kMaxDepth,
       " positions deep, ", kMaxWork, " words written per character)");
}

GbnfPrefix::GbnfPrefix(const GbnfGrammar* grammar) : g_(grammar) {
  out_.v.clear();
  offsets_.v.clear();
  words_ = 0;
  for (uint32_t alt : g_->alternatives(g_->root())) {
    work_.v.assign({alt, 1});
    expand();
  }
  stacks_.swap(out_.v);
  n_stacks_ = static_cast<uint32_t>(offsets_.v.size());
  has_empty_ = false;
  for (size_t pos = 0; pos < stacks_.size(); pos += stacks_[pos] + 1)
    has_empty_ = has_empty_ || stacks_[pos] == 0;
}

void GbnfPrefix::emit(size_t begin, uint32_t depth) {
  const std::vector<uint32_t>& w = work_.v;
  std::vector<uint32_t>& out = out_.v;
  for (uint32_t o : offsets_.v) {
    if (out[o] != depth) continue;
    words_ += depth;  // what the comparison may read
    if (std::equal(w.begin() + static_cast<ptrdiff_t>(begin),
                   w.begin() + static_cast<ptrdiff_t>(begin + depth), out.begin() + o + 1))
      return;  // already there
  }
  if (offsets_.v.size() >= kMaxStacks || words_ > kMaxWork) over_limits();
  words_ += depth + 1;
  offsets_.v.push_back(static_cast<uint32_t>(out.size()));
  out.push_back(depth);
  out.insert(out.end(), w.begin() + static_cast<ptrdiff_t>(begin),
             w.begin() + static_cast<ptrdiff_t>(begin + depth));
}

void GbnfPrefix::expand() {
  // work_ is a last-in-first-out list of stacks, each its positions then its depth.
  std::vector<uint32_t>& w = work_.v;
  while (!w.empty()) {
    if (++words_ > kMaxWork) over_limits();
    const uint32_t d = w.back();
    const size_t begin = w.size() - 1 - d;
    if (d == 0 || g_->element(w[begin + d - 1]).kind == Kind::kChar) {
      emit(begin, d);
      w.resize(begin);
      continue;
    }
    const uint32_t top = w[begin + d - 1];
    const GbnfGrammar::Element& e = g_->element(top);
    if (e.kind == Kind::kEnd) {  // the alternative is done: back to where it was called from
      w[begin + d - 1] = d - 1;
      w.resize(begin + d);
      continue;
    }
    // A reference: its continuation stays below (none when the alternative ends there), and
    // each of the rule's alternatives goes on top.
    uint32_t base = d;
    if (g_->element(top + 1).kind == Kind::kEnd)
      --base;
    else
      w[begin + d - 1] = top + 1;
    const std::vector<uint32_t>& alts = g_->alternatives(e.arg);
    w.resize(begin + base);
    if (alts.empty()) {  // cannot happen once unfinishable alternatives are dropped
      w.resize(begin);
      continue;
    }
    words_ += static_cast<uint32_t>(alts.size()) * (base + 2);
    if (base + 1 > kMaxDepth || words_ > kMaxWork) over_limits();
    // The first alternative on the stack in place, the others on copies of it pushed after.
    w.push_back(alts[0]);
    w.push_back(base + 1);
    for (size_t i = 1; i < alts.size(); ++i) {
      for (uint32_t j = 0; j < base; ++j) {
        const uint32_t p = w[begin + j];  // read before push_back may move the buffer
        w.push_back(p);
      }
      w.push_back(alts[i]);
      w.push_back(base + 1);
    }
  }
}

bool GbnfPrefix::advance(uint32_t cp) {
  using namespace gbnf_prefix;  // this file's helpers
  out_.v.clear();
  offsets_.v.clear();
  words_ = 0;
  for (size_t pos = 0; pos < stacks_.size(); pos += stacks_[pos] + 1) {
    const uint32_t d = stacks_[pos];
    if (d == 0) continue;
    const uint32_t top = stacks_[pos + d];
    if (!g_->char_class(g_->element(top).arg).contains(cp)) continue;
    work_.v.assign(stacks_.begin() + static_cast<ptrdiff_t>(pos + 1),
                   stacks_.begin() + static_cast<ptrdiff_t>(pos + 1 + d));
    work_.v.back() = top + 1;
    work_.v.push_back(d);
    words_ += d + 1;
    expand();
  }
  work_total += words_;
  if (offsets_.v.empty()) return false;
  stacks_.swap(out_.v);
  n_stacks_ = static_cast<uint32_t>(offsets_.v.size());
  has_empty_ = false;
  for (uint32_t o : offsets_.v) has_empty_ = has_empty_ || stacks_[o] == 0;
  return true;
}

bool GbnfPrefix::top_takes_pending(size_t pos) const {
  const uint32_t d = stacks_[pos];
  if (d == 0) return false;
  // The code points the bytes so far begin: their bits then any continuation bits.
  const uint32_t shift = 6u * utf8_left_;
  const uint32_t lo = utf8_value_ << shift, hi = lo | ((1u << shift) - 1);
  // The valid code points of this encoded length (no overlong forms, no surrogates).
  std::pair<uint32_t, uint32_t> valid[2] = {{1, 0}, {1, 0}};
  if (utf8_len_ == 2) {
    valid[0] = {0x80, 0x7ff};
  } else if (utf8_len_ == 3) {
    valid[0] = {0x800, 0xd7ff};
    valid[1] = {0xe000, 0xffff};
  } else {
    valid[0] = {0x10000, CodePointSet::kMax};
  }
  const CodePointSet& cls = g_->char_class(g_->element(stacks_[pos + d]).arg);
  for (auto [vlo, vhi] : valid)
    if (cls.intersects(std::max(lo, vlo), std::min(hi, vhi))) return true;
  return false;
}

bool GbnfPrefix::partial_viable() const {
  for (size_t pos = 0; pos < stacks_.size(); pos += stacks_[pos] + 1)
    if (top_takes_pending(pos)) return true;
  return false;
}

// A stack's positions each wait for the rest of their alternative, so its shortest completion
// is the sum of their rests (the top's counts its character class, the pending character's
// when one is being read).
uint32_t GbnfPrefix::shortest_completion() const {
  uint64_t best = UINT32_MAX;
  for (size_t pos = 0; pos < stacks_.size(); pos += stacks_[pos] + 1) {
    if (utf8_left_ > 0 && !top_takes_pending(pos)) continue;
    uint64_t sum = 0;
    for (uint32_t i = 1; i <= stacks_[pos] && sum < best; ++i)
      sum += g_->shortest_rest(stacks_[pos + i]);
    best = std::min(best, sum);
  }
  return static_cast<uint32_t>(best);
}

bool GbnfPrefix::step(uint8_t c) {
  if (utf8_left_ == 0) {
    if (c < 0x80) return advance(c);
    if (c >= 0xc2 && c <= 0xdf) {
      utf8_len_ = 2;
      utf8_value_ = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
      utf8_len_ = 3;
      utf8_value_ = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
      utf8_len_ = 4;
      utf8_value_ = c & 0x07u;
    } else {
      return false;
    }
    utf8_left_ = static_cast<uint8_t>(utf8_len_ - 1);
    return partial_viable();
  }
  if ((c & 0xc0) != 0x80) return false;
  utf8_value_ = utf8_value_ << 6 | (c & 0x3fu);
  if (--utf8_left_ > 0) return partial_viable();
  // partial_viable() held at the byte before, so the range was valid; the last byte picks one
  // code point of it, which may still be an overlong form or a surrogate.
  const uint32_t cp = utf8_value_;
  static constexpr uint32_t kMinOf[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinOf[utf8_len_] || cp > CodePointSet::kMax || (cp >= 0xd800 && cp <= 0xdfff))
    return false;
  return advance(cp);
}

}  // namespace xtile::server
