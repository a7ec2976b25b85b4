#include "server/rerank.h"

#include <algorithm>
#include <numeric>

#include "server/api_error.h"
#include "server/completions.h"
#include "server/embedding_norm.h"
#include "server/embeddings.h"
#include "server/openai_request.h"

namespace xtile::server {

using nlohmann::json;

namespace {
namespace rerank {  // unity batches: CMakeLists.txt

// The same limit as an embeddings request's inputs.
constexpr size_t kMaxDocuments = 2048;

std::string required_text(const json& body, const char* key) {
  const auto v = body.find(key);
  if (v == body.end() || !v->is_string() || v->get<std::string>().empty())
    throw bad_request(std::string("'") + key + "' must be a non-empty string", key);
  return v->get<std::string>();
}

// The documents: strings, or Cohere's objects {"text": ...}.
std::vector<std::string> documents_of(const json& body, const char* key) {
  const auto v = body.find(key);
  if (v == body.end() || !v->is_array() || v->empty())
    throw bad_request(std::string("'") + key + "' must be a non-empty list of texts", key);
  if (v->size() > kMaxDocuments)
    throw bad_request(std::string("'") + key + "' holds " + std::to_string(v->size()) +
                          " documents; at most " + std::to_string(kMaxDocuments),
                      key);
  std::vector<std::string> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& d = (*v)[i];
    const json* text = &d;
    if (d.is_object() && d.contains("text")) text = &d["text"];
    if (!text->is_string()) {
      const std::string at = std::string(key) + "[" + std::to_string(i) + "]";
      throw bad_request("'" + at + "' must be a text or {\"text\": ...}", at);
    }
    out.push_back(text->get<std::string>());
  }
  return out;
}

bool flag(const json& body, const char* key) {
  const auto v = body.find(key);
  if (v == body.end() || v->is_null()) return false;
  if (!v->is_boolean()) throw bad_request(std::string("'") + key + "' must be true or false", key);
  return v->get<bool>();
}

}  // namespace rerank
}  // namespace

void handle_rerank(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  using namespace rerank;  // this file's helpers
  const json body = parse_body(req.body);
  check_requested_model(st, model_field(body));
  const RerankHead& head = st.model.rerank;
  if (!head.unavailable.empty())
    throw ApiError(501, "not_supported_error", head.unavailable, "not_supported");
  const std::string query = required_text(body, "query");
  // Hugging Face TEI's request names the documents "texts" and gets a bare list back.
  const bool tei = !body.contains("documents") && body.contains("texts");
  const char* key = tei ? "texts" : "documents";
  const std::vector<std::string> documents = documents_of(body, key);
  size_t top_n = documents.size();
  if (const auto n = body.find("top_n"); n != body.end() && !n->is_null()) {
    if (!n->is_number_integer() || n->get<int64_t>() < 1)
      throw bad_request("'top_n' must be a positive integer", "top_n");
    top_n = std::min(top_n, static_cast<size_t>(n->get<int64_t>()));
  }
  const bool with_text = flag(body, tei ? "return_text" : "return_documents");
  std::string instruction = kDefaultRerankInstruction;
  if (const auto i = body.find("instruction"); i != body.end() && !i->is_null()) {
    if (!i->is_string()) throw bad_request("'instruction' must be a string", "instruction");
    if (head.prompt.find("{instruction}") == std::string::npos)
      throw bad_request("the model's rerank prompt has no {instruction} to fill", "instruction");
    instruction = i->get<std::string>();
  }

  const Tokenizer& tok = *st.tok;
  std::vector<std::vector<int32_t>> inputs;
  for (const std::string& d : documents) {
    // The prompt's own special tokens; BOS where the vocabulary asks for one, never an EOS
    // after the last position, whose state the score reads.
    std::vector<int32_t> ids;
    if (tok.add_bos() && tok.bos() >= 0) ids.push_back(tok.bos());
    const std::vector<int32_t> text =
        tok.encode(rerank_prompt(head, query, d, instruction), /*add_bos=*/false,
                   /*parse_special=*/true);
    ids.insert(ids.end(), text.begin(), text.end());
    inputs.push_back(std::move(ids));
  }
  EmbedOptions o;
  o.pooling = Pooling::kLast;
  o.normalize = kNoNorm;
  ClientConnection conn(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  const Embedded e = embed(st, std::move(inputs), o, conn, res);
  if (e.client_gone) return;

  const std::vector<std::vector<float>> hidden = pooled_vectors(e);
  std::vector<double> scores;
  for (const std::vector<float>& h : hidden) scores.push_back(rerank_score(head, h));
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  order.resize(top_n);
  json results = json::array();
  for (size_t i : order) {
    json r = {{"index", i}, {tei ? "score" : "relevance_score", scores[i]}};
    if (with_text) {
      if (tei)
        r["text"] = documents[i];
      else
        r["document"] = {{"text", documents[i]}};
    }
    results.push_back(std::move(r));
  }
  if (tei) {
    res.set_content(dump(results), "application/json");
    return;
  }
  res.set_content(
      dump(json{{"model", st.model.id},
                {"object", "list"},
                {"usage", {{"prompt_tokens", e.prompt_tokens}, {"total_tokens", e.prompt_tokens}}},
                {"results", std::move(results)}}),
      "application/json");
}

}  // namespace xtile::server
