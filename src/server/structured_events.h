// A streamed answer whose events follow the reply's structure, opening and closing a block (an
// item) for each part as it arrives, rather than one chunk per update: Anthropic's Messages
// (anthropic_api.h) and OpenAI's Responses (responses_api.h). sse.cpp feeds one of these with
// what a job releases, split into thinking, text and tool calls, and writes what it returns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/job.h"
#include "server/tool_calls.h"

namespace xtile::server {

class StructuredEvents {
 public:
  virtual ~StructuredEvents() = default;
  // The first events: the answer with nothing in it yet, and the prompt's token count.
  virtual std::string start(int64_t prompt_tokens) = 0;
  // The events for the reply's next parts (any may be empty; "" when there is nothing to say).
  virtual std::string push(const std::string& thinking, const std::string& text,
                           const std::vector<ToolCallOut>& calls) = 0;
  // The last events: the open block's end, how the answer ended, its usage.
  virtual std::string finish(FinishReason reason, const JobStats& s) = 0;
  // Keeps a silent stream's connection alive.
  virtual std::string ping() const = 0;
  // A failure after the stream began (it ends after this).
  virtual std::string error(int status, const std::string& message) = 0;
};

}  // namespace xtile::server
