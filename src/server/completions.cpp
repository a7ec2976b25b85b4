#include "server/completions.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "base/error.h"
#include "server/api_error.h"
#include "server/connection.h"
#include "server/infill.h"
#include "server/native_response.h"
#include "server/openai_response.h"
#include "server/sse.h"
#include "server/text_stream.h"
#include "server/tool_calls.h"

namespace xtile::server {

using nlohmann::json;

namespace {
namespace completions {  // unity batches: CMakeLists.txt

// Whether the rendered prompt leaves the model inside an open think block (templates that
// start the answer with "<think>\n").
bool opens_think_block(const std::string& prompt) {
  size_t end = prompt.size();
  while (end > 0 && (prompt[end - 1] == '\n' || prompt[end - 1] == ' ')) --end;
  return std::string_view(prompt).substr(0, end).ends_with("<think>");
}

// The choices to return, in order: each prompt's `per_prompt` choices are consecutive; with
// best_of (per_prompt > n) its n of the highest mean log-probability per generated token,
// highest first (ties: the lower index; a choice without tokens last), else all of them.
std::vector<size_t> best_choices(const std::vector<std::vector<TokenOut>>& tokens,
                                 size_t per_prompt, size_t n) {
  std::vector<size_t> out;
  for (size_t first = 0; first < tokens.size(); first += per_prompt) {
    std::vector<std::pair<double, size_t>> ranked;
    for (size_t i = first; i < first + per_prompt; ++i) {
      double sum = 0.0;
      size_t count = 0;
      for (const TokenOut& t : tokens[i])
        if (!t.in_prompt) {
          sum += t.logprob;
          ++count;
        }
      ranked.push_back({count > 0 ? sum / static_cast<double>(count) : -INFINITY, i});
    }
    if (per_prompt > n)
      std::stable_sort(ranked.begin(), ranked.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t k = 0; k < n; ++k) out.push_back(ranked[k].second);
  }
  return out;
}

// One choice's whole answer in the endpoint's shape (choices[0]; the handler merges several).
json choice_response(const ParsedRequest& r, const ResponseHead& head, bool native, bool chat,
                     bool in_reasoning, const std::string& model, const Tokenizer& tok,
                     std::string text, const std::vector<TokenOut>& tokens, FinishReason reason,
                     const JobStats& stats) {
  json ids = r.return_tokens ? token_ids_json(tokens) : json();
  json out;
  if (native) {
    out = native_final(text, model, reason, stats, r.logprobs ? native_probs(tokens, tok) : json(),
                       std::move(ids));
  } else if (chat) {
    std::string reasoning, content;
    std::vector<ToolCallOut> calls;
    split_reply(r, in_reasoning, std::move(text), &reasoning, &content, &calls);
    out = chat_response(head, content, reasoning, reason, stats,
                        r.logprobs ? chat_logprobs(tokens, tok) : json(), calls);
  } else {
    size_t offset = 0;
    out = completion_response(head, text, reason, stats,
                              r.logprobs ? completion_logprobs(tokens, tok, &offset) : json());
  }
  if (!native && r.return_tokens) out["choices"][0]["tokens"] = std::move(ids);
  return out;
}

// An assistant message last (without calls) is the start of the answer: llama-server's and
// Ollama's prefill, which Anthropic's API documents. The model continues it, and the reply is
// what follows.
bool continues_answer(const std::vector<ChatMessage>& messages) {
  return !messages.empty() && messages.back().role == "assistant" &&
         messages.back().tool_calls.empty();
}

}  // namespace completions
}  // namespace

ToolCallFormat tool_format(const ParsedRequest& r) {
  return r.tools.empty() || !r.tool_rules ? ToolCallFormat::kNone : r.tool_rules->format;
}

void split_reply(const ParsedRequest& r, bool in_reasoning, std::string text,
                 std::string* reasoning, std::string* content, std::vector<ToolCallOut>* calls) {
  if (r.reasoning) {
    ReasoningSplitter splitter(in_reasoning);
    splitter.push(text, reasoning, content);
    splitter.finish(reasoning, content);
  } else {
    *content = std::move(text);
  }
  if (const ToolCallFormat format = tool_format(r); format != ToolCallFormat::kNone) {
    ToolCallSplitter splitter(format);
    std::string rest;
    splitter.push(*content, &rest, calls);
    splitter.finish(&rest, calls);
    *content = std::move(rest);
  }
}

std::string chat_prompt_text(const ServerState& st, const ParsedRequest& r) {
  return chat_prompt_text(st, r, r.messages);
}

std::string chat_prompt_text(const ServerState& st, const ParsedRequest& r,
                             const std::vector<ChatMessage>& messages) {
  using namespace completions;  // this file's helpers
  ChatOptions co;
  co.enable_thinking = r.enable_thinking;
  const int indent = chat_family_tool_indent(st.model.chat_family);
  for (const nlohmann::ordered_json& t : r.tools) co.tools.push_back(python_json(t, indent));
  co.date_string = r.date_string;
  co.tools_in_user_message = r.tools_in_user_message;
  co.continue_final_message = continues_answer(messages);
  try {
    return apply_chat_template(st.model.chat_family, messages, co);
  } catch (const Error& e) {
    throw bad_request(e.what(), r.tools.empty() ? "messages" : "tools");
  }
}

Submitted submit_request(ServerState& st, ParsedRequest& r, Endpoint endpoint,
                         httplib::Response& res) {
  using namespace completions;  // this file's helpers
  const bool chat = endpoint == Endpoint::kChat;
  const bool native = endpoint == Endpoint::kNative;
  const Tokenizer& tok = *st.tok;
  resolve_logit_bias(tok, &r);
  resolve_dry_breakers(tok, &r);
  resolve_grammar_triggers(tok, &r);
  std::vector<std::vector<int32_t>> prompts;
  Submitted out;
  if (chat) {
    const std::string text = chat_prompt_text(st, r);
    // The template writes the BOS text and special tokens itself.
    prompts.push_back(tok.encode(text, /*add_bos=*/false, /*parse_special=*/true));
    out.in_reasoning = opens_think_block(text);
    // A constrained reply may follow a think block where the template lets the model think
    // first (Qwen3, unless switched off); a prompt that opened one starts the reply inside it.
    const bool prefilled = continues_answer(r.messages);
    r.gen.may_think = st.model.chat_family == ChatFamily::kQwen3 && r.enable_thinking && !prefilled;
    if (prefilled && (r.gen.json_object || r.gen.json_schema || r.gen.grammar))
      throw bad_request(
          "the last message is the assistant's, an answer begun (a prefill): its continuation "
          "cannot be held to a format or grammar that starts at the answer's start",
          r.gen.grammar ? "grammar" : "response_format");
    r.gen.starts_in_think = out.in_reasoning;
    if (r.tool_rules) r.tool_rules->format = chat_family_tool_format(st.model.chat_family);
    r.gen.tool_calls = r.tool_rules;
    r.gen.at_sequence_start = false;  // the answer continues the template's text
  }
  std::optional<FimTokens> fim;  // completions with a suffix: the text around the insertion
  if (r.suffix) {
    fim = fim_tokens(tok);
    if (!fim->usable())
      throw ApiError(400, "invalid_request_error",
                     "'suffix' needs a model trained to fill in the middle; this model's "
                     "vocabulary has no FIM tokens (<|fim_prefix|>, <|fim_suffix|>, "
                     "<|fim_middle|>, ...)",
                     "", "suffix");
  }
  for (const ParsedRequest::Prompt& p : r.prompts) {  // completions (a chat has none)
    if (fim) {
      if (!p.text) throw bad_request("'suffix' works with text prompts", "prompt");
      InfillText t;
      t.prefix = *p.text;
      t.suffix = *r.suffix;
      prompts.push_back(infill_prompt(tok, *fim, t, infill_limit(st, r.gen.max_tokens)));
    } else if (p.text) {
      prompts.push_back(tok.encode(*p.text, /*add_bos=*/true, /*parse_special=*/true));
      if (prompts.back().empty() && tok.bos() >= 0) prompts.back().push_back(tok.bos());
    } else {
      prompts.push_back(p.ids);
      for (int32_t id : p.ids)
        if (id >= tok.n_vocab())
          throw bad_request("token id " + std::to_string(id) + " is outside the vocabulary (" +
                                std::to_string(tok.n_vocab()) + " tokens)",
                            "prompt");
    }
  }
  const int64_t n_ctx = st.scheduler->options().n_ctx;
  for (const std::vector<int32_t>& prompt : prompts) {
    if (prompt.empty())
      throw bad_request("the prompt is empty (no tokens)", chat ? "messages" : "prompt");
    check_prompt_length(static_cast<int64_t>(prompt.size()), n_ctx, chat ? "messages" : "prompt");
  }

  const int n_slots = st.scheduler->options().n_slots;
  if (native && r.echo) throw bad_request("'echo' works with /v1/completions", "echo");
  if (native && (r.n > 1 || r.best_of > 1 || prompts.size() > 1))
    throw bad_request(
        "several prompts, 'n' or 'best_of' above 1 work with /v1/completions (and 'n' with "
        "/v1/chat/completions)",
        r.n > 1         ? "n"
        : r.best_of > 1 ? "best_of"
                        : "prompt");
  const int per_prompt = std::max(r.n, r.best_of);  // choices made (best_of: the candidates)
  const char* per_prompt_field = r.best_of > r.n ? "best_of" : "n";
  if (per_prompt > n_slots)
    throw bad_request("'" + std::string(per_prompt_field) + "' is " + std::to_string(per_prompt) +
                          " but this server runs " + std::to_string(n_slots) +
                          " slots (-np): at most that many choices",
                      per_prompt_field);
  constexpr size_t kMaxChoices = 128;
  if (prompts.size() * static_cast<size_t>(per_prompt) > kMaxChoices)
    throw bad_request(std::to_string(prompts.size()) + " prompts of " + std::to_string(per_prompt) +
                          " choices each are more than " + std::to_string(kMaxChoices) + " choices",
                      per_prompt_field);
  // Choice i of a prompt is that prompt alone with seed + i: its tokens are those bits, whatever
  // runs beside it (the scheduler's contract), and the choices differ when sampling.
  if (prompts.size() * static_cast<size_t>(per_prompt) > 1)
    out.signal = std::make_shared<JobSignal>();
  for (size_t p = 0; p < prompts.size(); ++p)
    for (int i = 0; i < per_prompt; ++i) {
      GenerationParams gen = r.gen;
      gen.sampler.seed += static_cast<uint64_t>(i);
      out.jobs.push_back(std::make_shared<Job>(prompts[p], std::move(gen), out.signal));
      if (r.echo)  // the prompt as sent; token ids as their text
        out.echo.push_back(r.prompts[p].text ? *r.prompts[p].text : tok.decode(prompts[p]));
    }
  queue_jobs(st, out.jobs, res);
  return out;
}

void queue_jobs(ServerState& st, const std::vector<std::shared_ptr<Job>>& jobs,
                httplib::Response& res) {
  switch (st.scheduler->submit(jobs)) {
    case Scheduler::Submit::kQueued:
      return;
    case Scheduler::Submit::kQueueFull: {
      const int retry = st.scheduler->retry_after_seconds();
      res.set_header("Retry-After", std::to_string(retry));
      throw ApiError(429, "rate_limit_error",
                     "the server is busy: every slot is in use and the queue is full; retry in " +
                         std::to_string(retry) + " s",
                     "queue_full");
    }
    case Scheduler::Submit::kStopping:
      throw ApiError(503, "unavailable_error", "the server is shutting down");
  }
}

void check_prompt_length(int64_t n_prompt, int64_t n_ctx, const std::string& param) {
  if (n_prompt <= n_ctx) return;
  ApiError e(400, "invalid_request_error",
             "the prompt has " + std::to_string(n_prompt) + " tokens, more than the context of " +
                 std::to_string(n_ctx) + " tokens a request may use (-c)",
             "context_length_exceeded", param);
  e.extra = {{"n_prompt_tokens", n_prompt}, {"n_ctx", n_ctx}};
  throw e;
}

void check_requested_model(const ServerState& st, const std::string& name) {
  if (name.empty() || st.model.matches(name)) return;
  throw ApiError(404, "invalid_request_error",
                 "the model '" + name + "' does not exist; this server runs '" + st.model.id +
                     "' (GET /v1/models)",
                 "model_not_found", "model");
}

bool read_all(const Submitted& sub, const ClientConnection& conn, httplib::Response& res,
              std::vector<std::string>* texts, std::vector<std::vector<TokenOut>>* tokens) {
  const auto& jobs = sub.jobs;
  auto cancel_all = [&] {
    for (const auto& job : jobs) job->cancel();
  };
  texts->assign(jobs.size(), std::string());
  tokens->assign(jobs.size(), std::vector<TokenOut>());
  auto checked = std::chrono::steady_clock::now();
  for (size_t i = 0; i < jobs.size(); ++i) {
    Job::Cursor cursor;
    for (;;) {
      Job::Update u;
      const bool news = jobs[i]->wait(&cursor, &u, std::chrono::milliseconds(100));
      // Every 100 ms, news or not (a generating job always has news).
      const auto now = std::chrono::steady_clock::now();
      if (now - checked >= std::chrono::milliseconds(100)) {
        checked = now;
        if (conn.gone()) {
          cancel_all();  // nobody to answer; the connection is closed after this
          res.status = 499;
          return false;
        }
      }
      if (!news) continue;
      (*texts)[i] += u.text;
      for (TokenOut& t : u.tokens) (*tokens)[i].push_back(std::move(t));
      if (u.done) break;
    }
    if (jobs[i]->finish_reason() == FinishReason::kError) {
      cancel_all();
      const int status = jobs[i]->error_status();
      throw ApiError(status, status == 503 ? "unavailable_error" : "server_error",
                     jobs[i]->error());
    }
  }
  return true;
}

bool read_chat_reply(const ParsedRequest& r, const Submitted& sub, const ClientConnection& conn,
                     httplib::Response& res, ChatReply* out) {
  std::vector<std::string> texts;
  std::vector<std::vector<TokenOut>> tokens;
  if (!read_all(sub, conn, res, &texts, &tokens)) return false;
  const Job& job = *sub.jobs.front();
  split_reply(r, sub.in_reasoning, std::move(texts.front()), &out->thinking, &out->text,
              &out->calls);
  out->reason = job.finish_reason();
  out->stats = job.stats();
  return true;
}

void stream_chat_events(const ServerState& st, const ParsedRequest& r, Submitted sub,
                        const ClientConnection& conn, httplib::Response& res, ResponseHead head,
                        std::shared_ptr<StructuredEvents> events) {
  StreamSpec spec;
  spec.chat = true;
  spec.reasoning = r.reasoning;
  spec.in_reasoning = sub.in_reasoning;
  spec.tool_format = tool_format(r);
  spec.ping_s = st.opts.sse_ping_s;
  spec.head = std::move(head);
  spec.events = std::move(events);
  stream_job(res, std::move(sub.jobs), std::move(sub.signal), conn, *st.tok, spec);
}

void handle_completion(ServerState& st, const httplib::Request& req, httplib::Response& res,
                       Endpoint endpoint) {
  handle_completion(st, parse_body(req.body), req, res, endpoint);
}

void handle_completion(ServerState& st, const nlohmann::ordered_json& body,
                       const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  using namespace completions;  // this file's helpers
  const bool chat = endpoint == Endpoint::kChat;
  const bool native = endpoint == Endpoint::kNative;
  ParsedRequest r = parse_request(body, chat, st.opts.defaults);
  check_requested_model(st, r.model);
  Submitted sub = submit_request(st, r, endpoint, res);
  const Tokenizer& tok = *st.tok;
  const bool in_reasoning = sub.in_reasoning;

  ResponseHead head{make_id(chat ? "chatcmpl-" : "cmpl-"), static_cast<int64_t>(std::time(nullptr)),
                    st.model.id, st.model.fingerprint};
  ClientConnection conn(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  if (r.stream) {
    StreamSpec spec;
    spec.chat = chat;
    spec.native = native;
    spec.return_tokens = r.return_tokens;
    spec.reasoning = chat && r.reasoning;
    spec.in_reasoning = in_reasoning;
    spec.tool_format = chat ? tool_format(r) : ToolCallFormat::kNone;
    spec.logprobs = r.logprobs;
    spec.include_usage = r.include_usage;
    spec.n = r.n;
    spec.echo = sub.echo;
    spec.ping_s = st.opts.sse_ping_s;
    spec.head = head;
    stream_job(res, std::move(sub.jobs), std::move(sub.signal), conn, tok, spec);
    return;
  }

  // The choices run together; each is read to its end in turn.
  const auto& jobs = sub.jobs;
  std::vector<std::string> texts;
  std::vector<std::vector<TokenOut>> tokens;
  if (!read_all(sub, conn, res, &texts, &tokens)) return;
  for (size_t i = 0; i < sub.echo.size(); ++i) texts[i] = sub.echo[i] + texts[i];
  std::vector<JobStats> stats;
  for (const auto& job : jobs) stats.push_back(job->stats());
  const size_t per_prompt = static_cast<size_t>(std::max(r.n, r.best_of));
  const std::vector<size_t> shown = best_choices(tokens, per_prompt, static_cast<size_t>(r.n));
  json out;
  for (size_t k = 0; k < shown.size(); ++k) {
    const size_t i = shown[k];
    json one = choice_response(r, head, native, chat, in_reasoning, st.model.id, tok,
                               std::move(texts[i]), tokens[i], jobs[i]->finish_reason(), stats[i]);
    if (k == 0) {
      out = std::move(one);
    } else {
      one["choices"][0]["index"] = k;
      out["choices"].push_back(std::move(one["choices"][0]));
    }
  }
  // Every choice made is counted, the candidates best_of left out too (as OpenAI bills them).
  if (jobs.size() > 1) out["usage"] = usage_json(stats, per_prompt);
  res.set_content(dump(out), "application/json");
}

}  // namespace xtile::server
