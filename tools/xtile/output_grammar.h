// llama-cli's --grammar, --grammar-file and -j / --json-schema for `xtile run`: the generated
// text held to a GBNF grammar (src/server/gbnf.h) or to one object of a JSON schema
// (src/server/json_schema.h), token by token, through the server's token filter
// (reply_constraint.h): a draw the grammar refuses is drawn again from the logits with every
// refused token masked out, and the end of generation comes only where the text is whole.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "model/generate.h"

namespace xtile {

class Tokenizer;
namespace server {
class ReplyConstraint;
class TokenBytes;
class GbnfGrammar;
class JsonSchema;
}  // namespace server

struct OutputGrammarFlags {
  std::string grammar;       // GBNF text
  std::string grammar_file;  // a file of GBNF text
  std::string json_schema;   // a JSON schema (its root an object schema)
  bool any() const { return !grammar.empty() || !grammar_file.empty() || !json_schema.empty(); }
};

void add_output_grammar_flags(CLI::App* app, OutputGrammarFlags* f);

class OutputGrammar {
 public:
  // Compiles the grammar or schema (before the model loads: a bad one fails fast); throws
  // xtile::Error naming the problem.
  explicit OutputGrammar(const OutputGrammarFlags& f);
  ~OutputGrammar();

  // A picker that draws with `base` (empty: greedy) and keeps the text within the grammar.
  TokenPicker picker(const Tokenizer& tok, TokenPicker base);

 private:
  std::shared_ptr<const server::GbnfGrammar> gbnf_;
  std::shared_ptr<const server::JsonSchema> schema_;
  std::unique_ptr<server::TokenBytes> bytes_;
  std::unique_ptr<server::ReplyConstraint> constraint_;
};

}  // namespace xtile
