#include "server/tool_call_prefix.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace xtile::server {

namespace {

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";
constexpr std::string_view kTrigger = "<tool_call>";
// The frame's fixed pieces: a call's opening up to its name, the name's end up to the
// arguments, the arguments' end up to the block's close.
constexpr std::string_view kOpen = "<tool_call>\n{\"name\": \"";
constexpr std::string_view kMid = ", \"arguments\": ";
constexpr std::string_view kClose = "}\n</tool_call>";

bool is_blank(uint8_t c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

}  // namespace

void ToolCallRules::add(std::string name, std::shared_ptr<const JsonSchema> parameters) {
  std::string key = nlohmann::json(name).dump();  // "name", escaped
  key.erase(0, 1);
  const auto at = std::lower_bound(keys.begin(), keys.end(), key);
  if (at != keys.end() && *at == key) return;
  const auto i = at - keys.begin();
  tools.insert(tools.begin() + i, Tool{std::move(name), std::move(parameters)});
  keys.insert(at, std::move(key));
}

ToolCallPrefix::ToolCallPrefix(const ToolCallRules& rules, bool may_think, bool starts_in_think)
    : rules_(&rules) {
  if (starts_in_think) {
    phase_ = Phase::kThink;
  } else if (rules.forced && !may_think) {  // the reply starts with the frame
    phase_ = Phase::kLead;
    literal(kOpen, Phase::kName);
  } else {
    phase_ = Phase::kLead;
  }
}

bool ToolCallPrefix::may_end() const {
  switch (phase_) {
    case Phase::kFree:
    case Phase::kAfter:
    case Phase::kDone:
      return true;
    case Phase::kLead:
    case Phase::kThink:
      return !rules_->forced;
    default:
      return false;
  }
}

bool ToolCallPrefix::free_text() const {
  return phase_ == Phase::kFree || phase_ == Phase::kThink ||
         (phase_ == Phase::kLead && !rules_->forced);
}

void ToolCallPrefix::literal(std::string_view rest, Phase next) {
  phase_ = Phase::kLiteral;
  literal_ = rest;
  next_ = next;
}

void ToolCallPrefix::free_byte(uint8_t c) {
  matched_ = tag_advance(kTrigger, matched_, c);
  if (matched_ == kTrigger.size()) literal(kOpen.substr(kTrigger.size()), Phase::kName);
}

bool ToolCallPrefix::name_byte(uint8_t c) {
  // The keys still possible share their first cand_pos_ bytes; those going on with c are a
  // contiguous run of the sorted keys. No key is a prefix of another (each ends with its one
  // unescaped quote).
  const std::vector<std::string>& keys = rules_->keys;
  const auto first = keys.begin() + cand_lo_, last = keys.begin() + cand_hi_;
  const auto byte_at = [&](const std::string& k) { return static_cast<uint8_t>(k[cand_pos_]); };
  const auto lo =
      std::partition_point(first, last, [&](const std::string& k) { return byte_at(k) < c; });
  const auto hi =
      std::partition_point(lo, last, [&](const std::string& k) { return byte_at(k) == c; });
  if (lo == hi) return false;
  cand_lo_ = static_cast<uint16_t>(lo - keys.begin());
  cand_hi_ = static_cast<uint16_t>(hi - keys.begin());
  ++cand_pos_;
  if (keys[cand_lo_].size() == cand_pos_) {  // the whole name and its closing quote
    args_ = JsonPrefix(rules_->tools[cand_lo_].parameters.get());
    literal(kMid, Phase::kArgs);
  }
  return true;
}

bool ToolCallPrefix::step(uint8_t c) {
  switch (phase_) {
    case Phase::kLead:
      if (matched_ == 0 && !rules_->forced && is_blank(c)) return true;
      if (static_cast<uint8_t>(kThinkOpen[matched_]) == c) {
        if (++matched_ == kThinkOpen.size()) {
          phase_ = Phase::kThink;
          matched_ = 0;
        }
        return true;
      }
      if (rules_->forced) {  // not a think block: the first call's opening
        if (kOpen.substr(0, matched_) != kThinkOpen.substr(0, matched_) ||
            static_cast<uint8_t>(kOpen[matched_]) != c)
          return false;
        literal(kOpen.substr(matched_ + 1), Phase::kName);
        return true;
      }
      // Free text that began like "<think>": those bytes and c, watched for the trigger.
      phase_ = Phase::kFree;
      {
        const uint8_t lead = matched_;
        matched_ = 0;
        for (uint8_t i = 0; i < lead; ++i) free_byte(static_cast<uint8_t>(kThinkOpen[i]));
      }
      free_byte(c);
      return true;
    case Phase::kThink:
      matched_ = tag_advance(kThinkClose, matched_, c);
      if (matched_ == kThinkClose.size()) {
        matched_ = 0;
        phase_ = rules_->forced ? Phase::kGap : Phase::kFree;
        gap_ = 0;
      }
      return true;
    case Phase::kGap:
      if (is_blank(c)) {
        if (gap_ == kMaxGap) return false;
        ++gap_;
        return true;
      }
      if (c != '<') return false;
      literal(kOpen.substr(1), Phase::kName);
      return true;
    case Phase::kFree:
      free_byte(c);
      return true;
    case Phase::kLiteral:
      if (static_cast<uint8_t>(literal_[0]) != c) return false;
      literal_.remove_prefix(1);
      if (literal_.empty()) {
        phase_ = next_;
        matched_ = 0;
        if (phase_ == Phase::kName) {
          cand_lo_ = 0;
          cand_hi_ = static_cast<uint16_t>(rules_->keys.size());
          cand_pos_ = 0;
        }
      }
      return true;
    case Phase::kName:
      return name_byte(c);
    case Phase::kArgs:
      if (!args_.try_step(c)) return false;
      if (args_.complete()) {
        ++calls_;
        const bool forced = rules_->forced;
        literal(kClose, !forced ? Phase::kFree : rules_->parallel ? Phase::kAfter : Phase::kDone);
      }
      return true;
    case Phase::kAfter:
      if (c != '\n') return false;
      literal(kOpen, Phase::kName);
      return true;
    case Phase::kDone:
      return false;
  }
  return false;
}

}  // namespace xtile::server
