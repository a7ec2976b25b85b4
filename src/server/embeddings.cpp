#include "server/embeddings.h"

#include <span>

#include "server/api_error.h"
#include "server/completions.h"
#include "server/embedding_norm.h"
#include "server/openai_request.h"

namespace xtile::server {

using nlohmann::json;

namespace {
namespace embeddings {  // unity batches: CMakeLists.txt

// OpenAI's limit on a request's inputs.
constexpr size_t kMaxInputs = 2048;

std::vector<int32_t> ids_of(const ServerState& st, const json& list, const std::string& at) {
  std::vector<int32_t> ids;
  for (const json& v : list) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= st.tok->n_vocab())
      throw bad_request("'" + at + "' holds " + v.dump() + ", not a token id of the vocabulary (" +
                            std::to_string(st.tok->n_vocab()) + " tokens)",
                        at);
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

// Standard base64 of the floats' little-endian bytes (OpenAI's encoding_format "base64").
std::string base64_floats(const std::vector<float>& v) {
  static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
  const size_t n = v.size() * sizeof(float);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t b = (uint32_t{bytes[i]} << 16) | (i + 1 < n ? uint32_t{bytes[i + 1]} << 8 : 0) |
                       (i + 2 < n ? uint32_t{bytes[i + 2]} : 0);
    out += digits[(b >> 18) & 63];
    out += digits[(b >> 12) & 63];
    out += i + 1 < n ? digits[(b >> 6) & 63] : '=';
    out += i + 2 < n ? digits[b & 63] : '=';
  }
  return out;
}

}  // namespace embeddings
}  // namespace

std::vector<std::vector<int32_t>> embedding_inputs(const ServerState& st, const json& input,
                                                   const std::string& param) {
  using namespace embeddings;  // this file's helpers
  std::vector<std::vector<int32_t>> out;
  auto text = [&](const json& s, const std::string& at) {
    if (s.get<std::string>().empty()) throw bad_request("'" + at + "' is an empty text", at);
    out.push_back(st.tok->encode(s.get<std::string>(), /*add_bos=*/true, /*parse_special=*/true));
  };
  if (input.is_string()) {
    text(input, param);
  } else if (input.is_array() && !input.empty() && input[0].is_number()) {
    out.push_back(ids_of(st, input, param));  // one input as token ids
  } else if (input.is_array()) {
    if (input.empty()) throw bad_request("'" + param + "' must not be empty", param);
    if (input.size() > kMaxInputs)
      throw bad_request("'" + param + "' holds " + std::to_string(input.size()) +
                            " inputs; at most " + std::to_string(kMaxInputs),
                        param);
    for (size_t i = 0; i < input.size(); ++i) {
      const std::string at = param + "[" + std::to_string(i) + "]";
      if (input[i].is_string()) {
        text(input[i], at);
      } else if (input[i].is_array() && !input[i].empty()) {
        out.push_back(ids_of(st, input[i], at));
      } else {
        throw bad_request("'" + at + "' must be a text or a non-empty list of token ids", at);
      }
    }
  } else {
    throw bad_request(
        "'" + param + "' must be a text, a list of texts, token ids or a list of token-id lists",
        param);
  }
  return out;
}

Embedded embed(ServerState& st, std::vector<std::vector<int32_t>> inputs, const EmbedOptions& o,
               const ClientConnection& conn, httplib::Response& res) {
  const int64_t n_ctx = st.scheduler->options().n_ctx;
  const int64_t n_embd = st.model.n_embd;
  const Pooling pooling = o.pooling != Pooling::kNone ? o.pooling : st.model.pooling;
  const bool per_token = pooling == Pooling::kTokens;
  if (per_token && !o.per_token)
    throw bad_request(
        "this server pools none (--pooling none): a vector per token, which only llama-server's "
        "POST /embedding returns",
        "input");
  const int64_t dimensions = o.dimensions;
  if (dimensions < 0 || dimensions > n_embd)
    throw bad_request(
        "'dimensions' must be 1 to " + std::to_string(n_embd) + " (the model's embedding size)",
        "dimensions");
  Embedded out;
  Submitted sub;
  if (inputs.size() > 1) sub.signal = std::make_shared<JobSignal>();
  GenerationParams gen;
  gen.embedding = pooling;
  for (std::vector<int32_t>& ids : inputs) {
    if (ids.empty()) throw bad_request("an input has no tokens", "input");
    if (o.truncate && static_cast<int64_t>(ids.size()) > n_ctx)
      ids.resize(static_cast<size_t>(n_ctx));
    check_prompt_length(static_cast<int64_t>(ids.size()), n_ctx, "input");
    out.prompt_tokens += static_cast<int64_t>(ids.size());
    sub.jobs.push_back(std::make_shared<Job>(std::move(ids), gen, sub.signal));
  }
  queue_jobs(st, sub.jobs, res);
  std::vector<std::string> texts;
  std::vector<std::vector<TokenOut>> tokens;
  if (!read_all(sub, conn, res, &texts, &tokens)) {
    out.client_gone = true;
    return out;
  }
  const size_t keep =
      dimensions > 0 ? static_cast<size_t>(dimensions) : static_cast<size_t>(n_embd);
  for (const auto& job : sub.jobs) {
    std::vector<std::vector<float>> rows = job->embedding();
    if (rows.empty())  // (not expected: a failed job is read_all's error)
      throw ApiError(500, "server_error", "an embedding ended without its vector");
    if (!per_token)  // (one row)
      rows[0] = normalized(std::span<const float>(rows[0]).first(keep), o.normalize);
    out.vectors.push_back(std::move(rows));
    out.prompt_ms = std::max(out.prompt_ms, job->stats().prompt_ms);
  }
  return out;
}

std::vector<std::vector<float>> pooled_vectors(const Embedded& e) {
  std::vector<std::vector<float>> out;
  for (const auto& rows : e.vectors) out.push_back(rows.at(0));
  return out;
}

int64_t dimensions_field(const json& body) {
  const auto d = body.find("dimensions");
  if (d == body.end() || d->is_null()) return 0;
  if (!d->is_number_integer() || d->get<int64_t>() < 1)
    throw bad_request("'dimensions' must be a positive integer", "dimensions");
  return d->get<int64_t>();
}

std::string model_field(const json& body) {
  const auto m = body.find("model");
  if (m == body.end() || m->is_null()) return "";
  if (!m->is_string()) throw bad_request("'model' must be a string", "model");
  return m->get<std::string>();
}

void handle_embeddings(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  using namespace embeddings;  // this file's helpers
  const json body = parse_body(req.body);
  // llama-server reads "content" as its own shape's field.
  if (!body.contains("input") && body.contains("content"))
    return handle_native_embedding(st, body, req, res);
  check_requested_model(st, model_field(body));
  const auto input = body.find("input");
  if (input == body.end() || input->is_null()) throw bad_request("'input' is required", "input");
  std::string format = "float";
  if (const auto f = body.find("encoding_format"); f != body.end() && !f->is_null()) {
    if (!f->is_string() || (*f != "float" && *f != "base64"))
      throw bad_request("'encoding_format' must be \"float\" or \"base64\"", "encoding_format");
    format = f->get<std::string>();
  }
  const int64_t dimensions = dimensions_field(body);
  ClientConnection conn(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  EmbedOptions o;
  o.dimensions = dimensions;
  const Embedded e = embed(st, embedding_inputs(st, *input, "input"), o, conn, res);
  if (e.client_gone) return;
  const std::vector<std::vector<float>> vectors = pooled_vectors(e);
  json data = json::array();
  for (size_t i = 0; i < vectors.size(); ++i)
    data.push_back(
        {{"object", "embedding"},
         {"index", i},
         {"embedding", format == "base64" ? json(base64_floats(vectors[i])) : json(vectors[i])}});
  res.set_content(
      dump(
          json{{"object", "list"},
               {"data", std::move(data)},
               {"model", st.model.id},
               {"usage", {{"prompt_tokens", e.prompt_tokens}, {"total_tokens", e.prompt_tokens}}}}),
      "application/json");
}

void handle_native_embedding(ServerState& st, const json& body, const httplib::Request& req,
                             httplib::Response& res) {
  check_requested_model(st, model_field(body));
  const char* field = body.contains("input") ? "input" : "content";
  const auto input = body.find(field);
  if (input == body.end() || input->is_null())
    throw bad_request("'content' (or 'input') is required", "content");
  EmbedOptions o;
  o.per_token = true;
  if (const auto n = body.find("embd_normalize"); n != body.end() && !n->is_null()) {
    if (!n->is_number_integer() || !is_embedding_norm(n->get<long long>()))
      throw bad_request(
          "'embd_normalize' must be an integer: -1 none, 0 max absolute (int16 range), 1 "
          "taxicab, 2 Euclidean, p > 2 the p-norm",
          "embd_normalize");
    o.normalize = n->get<int>();
  }
  ClientConnection conn(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  const Embedded e = embed(st, embedding_inputs(st, *input, field), o, conn, res);
  if (e.client_gone) return;
  json out = json::array();
  for (size_t i = 0; i < e.vectors.size(); ++i)
    out.push_back({{"index", i}, {"embedding", e.vectors[i]}});
  res.set_content(dump(out), "application/json");
}

}  // namespace xtile::server
