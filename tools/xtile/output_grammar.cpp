#include "output_grammar.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "base/error.h"
#include "server/gbnf_prefix.h"
#include "server/json_prefix.h"
#include "server/json_schema.h"
#include "server/reply_constraint.h"
#include "tokenizer/tokenizer.h"

namespace xtile {

void add_output_grammar_flags(CLI::App* app, OutputGrammarFlags* f) {
  app->add_option("--grammar", f->grammar,
                  "hold the output to a GBNF grammar (llama.cpp's format, rule 'root')")
      ->type_name("GBNF");
  app->add_option("--grammar-file", f->grammar_file, "read the GBNF grammar from a file")
      ->type_name("FILE");
  app->add_option("-j,--json-schema", f->json_schema,
                  "hold the output to one JSON object of this schema (docs/SERVER.md's subset)")
      ->type_name("SCHEMA");
}

OutputGrammar::OutputGrammar(const OutputGrammarFlags& f) {
  const int given = !f.grammar.empty() + !f.grammar_file.empty() + !f.json_schema.empty();
  if (given > 1) fail("give one of --grammar, --grammar-file and --json-schema");
  if (!f.json_schema.empty()) {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(f.json_schema);
    } catch (const nlohmann::json::exception& e) {
      fail("--json-schema is not JSON: ", e.what());
    }
    try {
      schema_ = std::make_shared<const server::JsonSchema>(doc);
    } catch (const Error& e) {
      fail("--json-schema: ", e.what());
    }
    return;
  }
  std::string text = f.grammar;
  if (!f.grammar_file.empty()) {
    std::ifstream in(f.grammar_file, std::ios::binary);
    if (!in) fail("cannot read grammar file '", f.grammar_file, "'");
    std::ostringstream os;
    os << in.rdbuf();
    text = os.str();
  }
  gbnf_ = std::make_shared<const server::GbnfGrammar>(text);
  server::GbnfPrefix start(gbnf_.get());  // the engine's limits, checked now
}

OutputGrammar::~OutputGrammar() = default;

TokenPicker OutputGrammar::picker(const Tokenizer& tok, TokenPicker base) {
  bytes_ = std::make_unique<server::TokenBytes>(tok);
  if (gbnf_)
    constraint_ = std::make_unique<server::GrammarConstraint<server::GbnfPrefix>>(
        *bytes_, server::GbnfPrefix(gbnf_.get()));
  else
    constraint_ = std::make_unique<server::GrammarConstraint<server::JsonPrefix>>(
        *bytes_, server::JsonPrefix(schema_.get()));
  server::ReplyConstraint* c = constraint_.get();
  return
      [c, base = std::move(base)](std::span<const float> logits, std::span<const int32_t> history) {
        const int32_t id = server::draw_constrained(*c, logits, [&](std::span<const float> l) {
          return base ? base(l, history) : pick_greedy(l);
        });
        c->accept(id);
        return id;
      };
}

}  // namespace xtile
