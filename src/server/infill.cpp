#include "server/infill.h"

#include <algorithm>
#include <initializer_list>
#include <string_view>

#include "server/api_error.h"
#include "server/completions.h"
#include "server/openai_request.h"
#include "server/request_fields.h"

namespace xtile::server {

using nlohmann::ordered_json;

namespace {
namespace infill {  // unity batches: CMakeLists.txt

// The name given to the repository when the extra context is written as one.
constexpr const char* kRepoName = "project";

void append(std::vector<int32_t>* to, const std::vector<int32_t>& ids) {
  to->insert(to->end(), ids.begin(), ids.end());
}

}  // namespace infill
}  // namespace

FimTokens fim_tokens(const Tokenizer& tok) {
  auto first = [&](std::initializer_list<std::string_view> texts) {
    for (std::string_view t : texts)
      if (const int32_t id = tok.find_token(t); id >= 0) return id;
    return int32_t{-1};
  };
  FimTokens f;
  f.prefix = first({"<|fim_prefix|>", "<fim_prefix>", "<fim-prefix>", "<PRE>", "\u2581<PRE>",
                    "<\uff5cfim\u2581begin\uff5c>"});
  f.suffix = first({"<|fim_suffix|>", "<fim_suffix>", "<fim-suffix>", "<SUF>", "\u2581<SUF>",
                    "<\uff5cfim\u2581hole\uff5c>"});
  f.middle = first({"<|fim_middle|>", "<fim_middle>", "<fim-middle>", "<MID>", "\u2581<MID>",
                    "<\uff5cfim\u2581end\uff5c>"});
  f.repo = first({"<|repo_name|>", "<repo_name>", "<reponame>"});
  f.file_sep = first({"<|file_sep|>", "<file_sep>"});
  return f;
}

std::vector<int32_t> infill_prompt(const Tokenizer& tok, const FimTokens& fim,
                                   const InfillText& text, int64_t limit) {
  using namespace infill;  // this file's helpers
  // The user's text is text: a file that contains "<|fim_prefix|>" does not open a FIM block.
  auto enc = [&](const std::string& s) { return tok.encode(s, false, /*parse_special=*/false); };
  std::vector<int32_t> prefix = enc(text.prefix + text.prompt), suffix = enc(text.suffix);
  const bool bos = tok.add_bos() && tok.bos() >= 0;
  const int64_t fixed = (bos ? 1 : 0) + 3;  // BOS, <prefix>, <suffix>, <middle>
  int64_t room = std::max<int64_t>(0, limit - fixed);
  // Too long: the prefix keeps its end, the suffix its beginning (three quarters of the room
  // to the prefix, unless the suffix needs less).
  const int64_t n_pre = static_cast<int64_t>(prefix.size()),
                n_suf = static_cast<int64_t>(suffix.size());
  if (n_pre + n_suf > room) {
    const int64_t keep_pre = std::min(n_pre, std::max(room * 3 / 4, room - n_suf));
    const int64_t keep_suf = std::min(n_suf, room - keep_pre);
    prefix.erase(prefix.begin(), prefix.end() - keep_pre);
    suffix.resize(static_cast<size_t>(keep_suf));
  }
  room -= static_cast<int64_t>(prefix.size() + suffix.size());

  // The extra context, newest chunks first into what room is left.
  std::vector<int32_t> context;
  if (!text.extra.empty()) {
    const bool repo = fim.file_sep >= 0;
    std::vector<int32_t> head, current;
    if (repo) {
      if (fim.repo >= 0) {
        head.push_back(fim.repo);
        append(&head, enc(std::string(kRepoName) + "\n"));
      }
      current.push_back(fim.file_sep);
      append(&current, enc(text.filename + "\n"));
    }
    int64_t left = room - static_cast<int64_t>(head.size() + current.size());
    std::vector<std::vector<int32_t>> kept;
    for (auto it = text.extra.rbegin(); it != text.extra.rend() && left > 0; ++it) {
      std::vector<int32_t> chunk;
      if (repo) {
        chunk.push_back(fim.file_sep);
        append(&chunk, enc(it->first + "\n" + it->second));
      } else {
        append(&chunk, enc(it->first + ":\n" + it->second + "\n\n"));
      }
      if (static_cast<int64_t>(chunk.size()) > left) break;
      left -= static_cast<int64_t>(chunk.size());
      kept.push_back(std::move(chunk));
    }
    if (!kept.empty()) {
      context = head;
      for (auto it = kept.rbegin(); it != kept.rend(); ++it) append(&context, *it);
      append(&context, current);
    }
  }

  std::vector<int32_t> ids;
  if (bos) ids.push_back(tok.bos());
  append(&ids, context);
  ids.push_back(fim.prefix);
  append(&ids, prefix);
  ids.push_back(fim.suffix);
  append(&ids, suffix);
  ids.push_back(fim.middle);
  return ids;
}

int64_t infill_limit(const ServerState& st, int64_t answer) {
  const int64_t n_ctx = st.scheduler->options().n_ctx;
  return n_ctx - std::min(answer > 0 ? answer : 256, n_ctx / 2);
}

void handle_infill(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  const ordered_json body = parse_body(req.body);
  const FimTokens fim = fim_tokens(*st.tok);
  if (!fim.usable())
    throw ApiError(501, "not_supported_error",
                   "this model's vocabulary has no fill-in-the-middle tokens (<|fim_prefix|>, "
                   "<|fim_suffix|>, <|fim_middle|> or another family's): /infill needs a code "
                   "model trained for it",
                   "not_supported");
  InfillText t;
  t.prefix = string_at(body, "input_prefix", "input_prefix", false);
  t.suffix = string_at(body, "input_suffix", "input_suffix", false);
  t.prompt = string_at(body, "prompt", "prompt", false);
  if (const std::string f = string_at(body, "filename", "filename", false); !f.empty())
    t.filename = f;
  if (const ordered_json* extra = present(body, "input_extra")) {
    if (!extra->is_array()) must_be("input_extra", "an array of {filename, text}");
    for (size_t i = 0; i < extra->size(); ++i) {
      const std::string at = "input_extra[" + std::to_string(i) + "]";
      if (!(*extra)[i].is_object()) must_be(at, "an object {filename, text}");
      std::string name = string_at((*extra)[i], "filename", at + ".filename", false);
      t.extra.emplace_back(name.empty() ? "file" : std::move(name),
                           string_at((*extra)[i], "text", at + ".text", true));
    }
  }
  int64_t answer = 0;
  for (const char* key : {"n_predict", "max_tokens"})
    if (const ordered_json* v = present(body, key); v && v->is_number_integer() && *v > 0)
      answer = v->get<int64_t>();
  const int64_t limit = infill_limit(st, answer);
  ordered_json completion = body;
  for (const char* key : {"input_prefix", "input_suffix", "input_extra", "filename"})
    completion.erase(key);
  completion["prompt"] = infill_prompt(*st.tok, fim, t, limit);
  handle_completion(st, completion, req, res, Endpoint::kNative);
}

}  // namespace xtile::server
