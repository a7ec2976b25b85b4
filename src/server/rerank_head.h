// What a model reranks with (rerank.h): the label rows its score reads and the prompt a query and
// a document go in.
//
// The decoder rerankers xtile runs (Qwen3-Reranker, a qwen3 GGUF) read the query and the document
// in a prompt that asks for "yes" or "no", and the score is P(yes) = softmax(yes, no)[0] at the
// prompt's last position: the label rows times that position's hidden state (the output norm's
// row), in double. The label rows are the GGUF's cls.output (llama.cpp's converter writes the
// head's "yes" and "no" rows there, and drops an untied head), else the output head's rows of the
// tokens "yes" and "no".
#pragma once

#include <string>
#include <vector>

namespace xtile {
class WeightStore;
class Tokenizer;
}  // namespace xtile

namespace xtile::server {

struct RerankHead {
  // One row: the score is its logit (a classifier's relevance). Two, (yes, no): softmax's first.
  std::vector<std::vector<float>> labels;
  // The prompt, with "{query}", "{document}" and maybe "{instruction}" to fill: the GGUF's
  // tokenizer.chat_template.rerank, else Qwen3-Reranker's own for a vocabulary with
  // <|im_start|> (builtin).
  std::string prompt;
  bool builtin = false;
  std::string unavailable;  // why this model cannot rerank ("" when it can): the route's 501
};

// Qwen3-Reranker's instruction when the request gives none.
inline constexpr const char* kDefaultRerankInstruction =
    "Given a web search query, retrieve relevant passages that answer the query";

// What the model reranks with (read once at load).
RerankHead rerank_head(const WeightStore& w, const Tokenizer& tok);

// The prompt for one document: the head's with its fields filled in.
std::string rerank_prompt(const RerankHead& h, const std::string& query,
                          const std::string& document, const std::string& instruction);

// A document's score from the last position's hidden state (n_embd floats).
double rerank_score(const RerankHead& h, const std::vector<float>& hidden);

}  // namespace xtile::server
