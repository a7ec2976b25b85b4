#include "server/rerank_head.h"

#include <cmath>
#include <exception>
#include <string_view>

#include "model/embedding.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {

namespace {
namespace rerank_head {  // unity batches: CMakeLists.txt

// Qwen3-Reranker's prompt (its model card's format), for a GGUF that does not carry one.
constexpr std::string_view kQwen3RerankPrompt =
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    "and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
    "<|im_start|>user\n<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
    "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

// Row `row` of the output head as floats (packed for the tier's kernels, or float rows).
std::vector<float> head_row(const WeightStore& w, int32_t row) {
  const Matrix& m = w.output().parts.at(0);
  std::vector<float> out(static_cast<size_t>(m.k));
  if (m.packed) {
    dequantize_packed_row(m.pm, row, out.data());
  } else {
    const float* r = m.f32 + static_cast<int64_t>(row) * m.k;
    out.assign(r, r + m.k);
  }
  return out;
}

// The label rows: cls.output's, else the head's rows of "yes" and "no". Throws what is missing.
std::vector<std::vector<float>> label_rows(const WeightStore& w, const Tokenizer& tok) {
  const int64_t n_embd = w.config().n_embd;
  std::vector<std::vector<float>> rows;
  if (const gguf::TensorInfo* cls = w.file().find_tensor("cls.output.weight")) {
    if (static_cast<int64_t>(cls->ne[0]) != n_embd || cls->ne[1] < 1 || cls->ne[1] > 2 ||
        cls->ne[2] != 1 || cls->ne[3] != 1)
      throw std::runtime_error("cls.output.weight is " + cls->shape_string() + ", not [" +
                               std::to_string(n_embd) + ", 1 or 2]");
    for (uint64_t r = 0; r < cls->ne[1]; ++r) {
      rows.emplace_back(static_cast<size_t>(n_embd));
      dequantize_gguf_row(cls->type, cls->data, n_embd, static_cast<int64_t>(r),
                          rows.back().data());
    }
    return rows;
  }
  for (const char* label : {"yes", "no"}) {
    const int32_t id = tok.find_token(label);
    if (id < 0)
      throw std::runtime_error(std::string("the vocabulary has no token \"") + label +
                               "\" and the file no cls.output.weight");
    rows.push_back(head_row(w, id));
  }
  return rows;
}

}  // namespace rerank_head
}  // namespace

RerankHead rerank_head(const WeightStore& w, const Tokenizer& tok) {
  using namespace rerank_head;  // this file's helpers
  RerankHead h;
  h.prompt = w.file().get_string_or("tokenizer.chat_template.rerank", "");
  if (h.prompt.empty() && tok.find_token("<|im_start|>") >= 0 &&
      tok.find_token("<|im_end|>") >= 0) {
    h.prompt = kQwen3RerankPrompt;
    h.builtin = true;
  }
  if (h.prompt.empty()) {
    h.unavailable =
        "the model has no rerank prompt (tokenizer.chat_template.rerank) and its vocabulary is "
        "not Qwen's, whose Qwen3-Reranker prompt xtile knows";
    return h;
  }
  try {
    h.labels = label_rows(w, tok);
  } catch (const std::exception& e) {
    h.unavailable = std::string("the model cannot rerank: ") + e.what();
  }
  return h;
}

std::string rerank_prompt(const RerankHead& h, const std::string& query,
                          const std::string& document, const std::string& instruction) {
  // One pass over the template, so that a "{document}" inside the query stays text.
  const std::pair<std::string_view, const std::string*> fields[] = {
      {"{query}", &query}, {"{document}", &document}, {"{instruction}", &instruction}};
  std::string out;
  const std::string_view t = h.prompt;
  for (size_t i = 0; i < t.size();) {
    bool filled = false;
    for (const auto& [name, value] : fields)
      if (t.substr(i).starts_with(name)) {
        out += *value;
        i += name.size();
        filled = true;
        break;
      }
    if (!filled) out += t[i++];
  }
  return out;
}

double rerank_score(const RerankHead& h, const std::vector<float>& hidden) {
  std::vector<double> logits;
  for (const std::vector<float>& row : h.labels) {
    double dot = 0;
    for (size_t i = 0; i < row.size() && i < hidden.size(); ++i)
      dot += static_cast<double>(row[i]) * hidden[i];
    logits.push_back(dot);
  }
  if (logits.size() == 1) return logits[0];
  return 1.0 / (1.0 + std::exp(logits[1] - logits[0]));  // softmax(yes, no)'s first
}

}  // namespace xtile::server
