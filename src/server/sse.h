// Streaming answers (stream: true) as server-sent events, OpenAI's framing:
//   data: {chunk}\n\n ... data: [DONE]\n\n
// chat: a first delta with the role, then content / reasoning_content deltas of whole UTF-8
// characters (several tokens' text in one delta when the client reads slower than the model
// writes), with tools a tool_calls delta for each complete call (name and whole arguments in
// one delta, "index" counting the calls), a last chunk with an empty delta, finish_reason and
// llama-server's timings, the usage chunk when stream_options.include_usage, then [DONE]. A failure
// after the stream began is sent as data: {"error": ...} and the stream ends without [DONE]. A
// silent stream (a long queue or prompt) gets a ": ping" comment every ping_s seconds. A failed
// write, or the client closing its end, cancels the job.
#pragma once

#include <httplib.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/chat_template.h"
#include "server/connection.h"
#include "server/job.h"
#include "server/ollama_api.h"
#include "server/openai_response.h"
#include "server/structured_events.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {

struct StreamSpec {
  bool chat = true;
  bool native = false;         // llama-server's /completion events (native_response.h)
  bool return_tokens = false;  // native: each event's token ids
  bool reasoning = true;      // split <think> blocks into reasoning_content (chat)
  bool in_reasoning = false;  // the prompt opened a think block
  // Take the calls out of the content (in the template's format) as tool_calls deltas.
  ToolCallFormat tool_format = ToolCallFormat::kNone;
  bool logprobs = false;
  bool include_usage = false;
  int n = 1;  // choices per prompt (the usage counts each prompt once)
  std::vector<std::string> echo;  // completions with echo: each choice's first text
  int ping_s = 30;
  ResponseHead head;
  // Ollama's NDJSON lines instead of server-sent events (ollama_api.h), one choice.
  std::optional<OllamaRoute> ollama;
  // Structured events (Anthropic's Messages, OpenAI's Responses) instead of chat chunks, one
  // choice: this object writes them.
  std::shared_ptr<StructuredEvents> events;
};

// The n choices of one request (n > 1 needs the signal their jobs notify; n == 1 may pass
// null): each choice's chunks carry its index, in the order the choices release text; each
// choice ends with its own last chunk; the usage chunk and [DONE] come after the last one.
// The native, Ollama and structured shapes take one choice.
void stream_job(httplib::Response& res, std::vector<std::shared_ptr<Job>> jobs,
                std::shared_ptr<JobSignal> signal, ClientConnection conn, const Tokenizer& tok,
                StreamSpec spec);

}  // namespace xtile::server
