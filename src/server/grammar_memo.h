// The mask's memo for grammars whose state can be named by its bytes (GbnfPrefix, JsonPrefix,
// ToolCallPrefix, and ThinkFirst around any of them): each state met is numbered, and each
// (state, byte) step is computed once and then looked up, a lazy DFA. A GBNF state is a set of
// stacks, and stepping it rebuilds them (~50 ns per byte); JsonPrefix's is cheaper to step but is
// copied per token, its schema's pattern engine with it. The mask steps every token of the
// vocabulary (a million bytes for Qwen's), and most of those steps lead from a handful of states
// back to the same ones (inside a string, every letter leaves the state as it was). The memo lives
// as long as the request's constraint, so later masks start warm; it is bounded (kMaxStates rows of
// 256 steps) and starts over when full.
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace xtile::server {

// A grammar whose state writes a key: equal keys, equal states (and equal futures).
template <class G>
concept MemoKeyed = requires(const G& g, std::string* key) {
  g.memo_key(key);
};

template <MemoKeyed Grammar>
class GrammarMemo {
 public:
  static constexpr int32_t kDead = -1;        // the byte is refused
  static constexpr int32_t kFull = -2;        // the memo is full: step this token without it
  static constexpr size_t kMaxStates = 4096;  // 4 MiB of rows

  // The number of state g, starting the memo over when it is more than half full.
  int32_t start(const Grammar& g) {
    if (states_.size() > kMaxStates / 2) clear();
    int32_t s = intern(g);
    if (s == kFull) {
      clear();
      s = intern(g);
    }
    return s;
  }

  // The state after byte c from state s: a number, kDead or kFull.
  int32_t next(int32_t s, uint8_t c) {
    int32_t t = rows_[static_cast<size_t>(s)][c];
    if (t != kUnknown) return t;
    probe_ = states_[static_cast<size_t>(s)];
    if (!probe_->try_step(c)) {
      t = kDead;
    } else {
      t = intern(*probe_);
      if (t == kFull) return kFull;
    }
    rows_[static_cast<size_t>(s)][c] = t;
    return t;
  }

 private:
  static constexpr int32_t kUnknown = -3;

  int32_t intern(const Grammar& g) {
    key_.clear();
    g.memo_key(&key_);
    const auto it = ids_.find(key_);
    if (it != ids_.end()) return it->second;
    if (states_.size() >= kMaxStates) return kFull;
    const auto id = static_cast<int32_t>(states_.size());
    ids_.emplace(key_, id);
    states_.push_back(g);
    rows_.emplace_back();
    rows_.back().fill(kUnknown);
    return id;
  }

  void clear() {
    ids_.clear();
    states_.clear();
    rows_.clear();
  }

  std::unordered_map<std::string, int32_t> ids_;
  std::vector<Grammar> states_;
  std::vector<std::array<int32_t, 256>> rows_;
  std::optional<Grammar> probe_;
  std::string key_;
};

}  // namespace xtile::server
