#include "server/tool_call_prefix.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace xtile::server {

namespace {
namespace tool_call_prefix {  // unity batches: CMakeLists.txt

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";

// A format's fixed pieces: what opens a call (lazy mode's trigger), the opening up to the
// name, the name's end up to the arguments, the arguments' end up to the call's close.
struct Frame {
  std::string_view trigger, open, mid, close;
};
constexpr Frame kHermes{"<tool_call>", "<tool_call>\n{\"name\": \"",
                        ", \"arguments\": ", "}\n</tool_call>"};
constexpr Frame kLlama{"{\"name\": \"", "{\"name\": \"", ", \"parameters\": ", "}"};

const Frame& frame(const ToolCallRules& rules) {
  return rules.format == ToolCallFormat::kLlamaJson ? kLlama : kHermes;
}

bool is_blank(uint8_t c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

}  // namespace tool_call_prefix
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
  using namespace tool_call_prefix;  // this file's helpers
  if (starts_in_think) {
    phase_ = Phase::kThink;
  } else if (rules.forced && !may_think) {  // the reply starts with the frame
    phase_ = Phase::kLead;
    literal(frame(rules).open, Phase::kName);
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
  using namespace tool_call_prefix;  // this file's helpers
  // Llama's call is the whole answer: once text began, none follows (nothing is watched).
  if (rules_->format == ToolCallFormat::kLlamaJson) return;
  const std::string_view trigger = kHermes.trigger;
  matched_ = tag_advance(trigger, matched_, c);
  if (matched_ == trigger.size()) literal(kHermes.open.substr(trigger.size()), Phase::kName);
}

void ToolCallPrefix::begin_name() {
  phase_ = Phase::kName;
  matched_ = 0;
  cand_lo_ = 0;
  cand_hi_ = static_cast<uint16_t>(rules_->keys.size());
  cand_pos_ = 0;
}

bool ToolCallPrefix::llama_lead(uint8_t c) {
  using namespace tool_call_prefix;  // this file's helpers
  // Lazy: blanks, then the answer either spells the call's opening (held to the tools from its
  // last byte on) or is text.
  const std::string_view open = kLlama.open;
  if (matched_ == 0 && is_blank(c)) return true;
  if (static_cast<uint8_t>(open[matched_]) == c) {
    if (++matched_ == open.size()) begin_name();
    return true;
  }
  phase_ = Phase::kFree;
  matched_ = 0;
  return true;
}

bool ToolCallPrefix::name_byte(uint8_t c) {
  using namespace tool_call_prefix;  // this file's helpers
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
    literal(frame(*rules_).mid, Phase::kArgs);
  }
  return true;
}

bool ToolCallPrefix::step(uint8_t c) {
  using namespace tool_call_prefix;  // this file's helpers
  switch (phase_) {
    case Phase::kLead:
      if (rules_->format == ToolCallFormat::kLlamaJson) return llama_lead(c);
      if (matched_ == 0 && !rules_->forced && is_blank(c)) return true;
      if (static_cast<uint8_t>(kThinkOpen[matched_]) == c) {
        if (++matched_ == kThinkOpen.size()) {
          phase_ = Phase::kThink;
          matched_ = 0;
        }
        return true;
      }
      if (rules_->forced) {  // not a think block: the first call's opening
        const std::string_view open = kHermes.open;
        if (open.substr(0, matched_) != kThinkOpen.substr(0, matched_) ||
            static_cast<uint8_t>(open[matched_]) != c)
          return false;
        literal(open.substr(matched_ + 1), Phase::kName);
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
      literal(kHermes.open.substr(1), Phase::kName);
      return true;
    case Phase::kFree:
      free_byte(c);
      return true;
    case Phase::kLiteral:
      if (static_cast<uint8_t>(literal_[0]) != c) return false;
      literal_.remove_prefix(1);
      if (literal_.empty()) {
        if (next_ == Phase::kName) {
          begin_name();
        } else {
          phase_ = next_;
          matched_ = 0;
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
        if (rules_->format == ToolCallFormat::kLlamaJson)  // one call, the whole answer
          literal(kLlama.close, Phase::kDone);
        else
          literal(kHermes.close, !forced            ? Phase::kFree
                                 : rules_->parallel ? Phase::kAfter
                                                    : Phase::kDone);
      }
      return true;
    case Phase::kAfter:
      if (c != '\n') return false;
      literal(kHermes.open, Phase::kName);
      return true;
    case Phase::kDone:
      return false;
  }
  return false;
}

}  // namespace xtile::server
