// Ollama's API (/api/chat, /api/generate, /api/tags, /api/show, /api/ps, /api/version), for the
// clients written against it (ollama-js, ollama-python, Open WebUI, editors' plug-ins). A request
// is translated into the OpenAI request it means and runs through the same parser, prompt and
// scheduler, so it keeps every promise of the OpenAI routes (batch-invariant bits, constrained
// JSON, tool calls); only the shapes differ. Ollama's answers are NDJSON lines, one JSON object
// per line, the last one with "done": true, the reason and durations in nanoseconds:
//   {"model", "created_at", "message": {"role", "content", "thinking"?, "tool_calls"?}, "done"}
// (/api/generate: "response" and "thinking" instead of "message"). Errors are {"error": "..."}.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/chat_template.h"
#include "server/job.h"
#include "server/server_state.h"
#include "server/tool_calls.h"

namespace xtile::server {

enum class OllamaRoute { kChat, kGenerate };

// The OpenAI request an Ollama request means, and whether it is a chat (/api/chat, and
// /api/generate unless "raw": the prompt as a user message under the model's template).
struct OllamaRequest {
  nlohmann::ordered_json openai;
  bool chat = true;
  bool stream = true;  // Ollama streams unless "stream": false
  std::string model;
  // No messages (or an empty prompt): Ollama's way to load a model; answered at once with
  // done_reason "load", nothing generated.
  bool load_only = false;
  // A chat longer than the context loses its oldest messages (Ollama's default; "truncate":
  // false makes it the OpenAI routes' 400).
  bool truncate = true;
};

// Throws ApiError (400 naming the field) for what is malformed or what xtile does not do
// (images, template, context). /api/generate's suffix makes it /v1/completions with a suffix
// (fill-in-the-middle).
OllamaRequest ollama_request(const nlohmann::ordered_json& body, OllamaRoute route);

// The messages Ollama keeps of a chat whose prompt is longer than the context: every system
// message and the longest run of the others, up to the last, whose prompt fits `n_ctx` tokens
// (`prompt_tokens` counts a candidate's prompt; fewer messages never make it longer). The last
// message is always kept: alone too long, the caller's check refuses it.
std::vector<ChatMessage> ollama_truncate(
    const std::vector<ChatMessage>& messages, int64_t n_ctx,
    const std::function<int64_t(const std::vector<ChatMessage>&)>& prompt_tokens);

// Whether `name` ("qwen3:1.7b", "stories260K.gguf:latest") names the served model: the OpenAI
// routes' names, with or without a ":latest" tag.
bool ollama_names(const ModelInfo& m, const std::string& name);
// The served model's Ollama name: its id, tagged ":latest" when it has no tag.
std::string ollama_name(const ModelInfo& m);

// RFC 3339 UTC time with nanoseconds, as Ollama writes created_at (and Anthropic's model
// listing its created_at).
std::string rfc3339(std::chrono::system_clock::time_point t);
std::string ollama_time_now();

// A piece of a streamed answer (done: false).
nlohmann::json ollama_chunk(OllamaRoute route, const std::string& model,
                            const std::string& thinking, const std::string& content,
                            const std::vector<ToolCallOut>& calls);
// The last line (or, not streamed, the whole answer): the rest of the text given, done: true,
// done_reason and the durations.
nlohmann::json ollama_final(OllamaRoute route, const std::string& model,
                            const std::string& thinking, const std::string& content,
                            const std::vector<ToolCallOut>& calls, FinishReason reason,
                            const JobStats& s);

// GET /api/tags's and /api/ps's entry for the served model; /api/show's body.
nlohmann::json ollama_model_entry(const ModelInfo& m);
nlohmann::json ollama_show(const ModelInfo& m, int64_t n_ctx);

}  // namespace xtile::server
