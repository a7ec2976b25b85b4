// Fill-in-the-middle: llama-server's POST /infill, which code-completion plug-ins (llama.vim,
// llama.vscode) call with the text before and after the cursor. The prompt is the model's FIM
// layout of special tokens, prefix first (PSM):
//   [BOS] [extra context] <fim_prefix> input_prefix + prompt <fim_suffix> input_suffix <fim_middle>
// and the reply, generated after <fim_middle>, is the text that goes between. The extra context
// (input_extra: other files' chunks) is written as repository-level FIM models read it when the
// vocabulary has the separators (Qwen2.5-Coder: <|repo_name|>, <|file_sep|>), else as plain
// text. The request is otherwise llama-server's /completion (n_predict, temperature, stream,
// ...), and so is the answer.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "server/server_state.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {

// A vocabulary's FIM tokens (-1 when it has none), found by their text: Qwen's and StarCoder's
// <|fim_prefix|> / <fim_prefix> / <fim-prefix>, CodeLlama's <PRE>, DeepSeek-Coder's
// <｜fim▁begin｜>, and their suffix and middle tokens; the repository and file separators.
struct FimTokens {
  int32_t prefix = -1, suffix = -1, middle = -1;
  int32_t repo = -1, file_sep = -1;
  bool usable() const { return prefix >= 0 && suffix >= 0 && middle >= 0; }
};
FimTokens fim_tokens(const Tokenizer& tok);

struct InfillText {
  std::string prefix, suffix, prompt;
  std::vector<std::pair<std::string, std::string>> extra;  // (filename, text), oldest first
  std::string filename = "file";                           // the file being edited
};

// The FIM prompt's token ids, at most `limit` of them: when longer, the extra context goes
// first (its oldest chunks), then the prefix's beginning and the suffix's end, the prefix
// keeping three quarters of what is left (the text nearest the cursor matters most).
std::vector<int32_t> infill_prompt(const Tokenizer& tok, const FimTokens& fim,
                                   const InfillText& text, int64_t limit);

// The most tokens a FIM prompt may take: the context less room for the answer (`answer` tokens,
// 256 when not positive, at most half the context).
int64_t infill_limit(const ServerState& st, int64_t answer);

// Throws ApiError (501 when the model has no FIM tokens).
void handle_infill(ServerState& st, const httplib::Request& req, httplib::Response& res);

}  // namespace xtile::server
