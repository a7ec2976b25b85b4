// The named server-sent events of a streamed body ("event: NAME" then "data: {...}"), as
// Anthropic's and OpenAI's Responses streams send them; comments (": ping") are skipped.
#pragma once

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace xtile {

struct NamedEvent {
  std::string name;
  nlohmann::json data;
};

inline std::vector<NamedEvent> named_events(const std::string& body) {
  std::vector<NamedEvent> out;
  std::istringstream in(body);
  std::string line, name;
  while (std::getline(in, line)) {
    if (line.starts_with("event: ")) name = line.substr(7);
    if (line.starts_with("data: ")) out.push_back({name, nlohmann::json::parse(line.substr(6))});
  }
  return out;
}

}  // namespace xtile
