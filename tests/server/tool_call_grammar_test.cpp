// Function calling's grammar (ToolCallPrefix) and its token filter, in both formats (Hermes
// blocks, Llama's whole-answer call). Checked byte by byte on hand-written cases (where the
// first refused byte must be), and against an independent check written here: a reader of
// whole replies that finds the calls with string search,
// parses their arguments with nlohmann::json and validates them with the schema tests' oracle.
// Random replies (calls, free text, think blocks) and their one-byte mutations must be taken
// whole by the grammar exactly when that reader accepts them, and no prefix the grammar takes
// may be a dead end.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "json_schema_oracle.h"
#include "mask_check.h"
#include "server/reply_constraint.h"
#include "server/tool_call_prefix.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {
namespace {
namespace tool_call_grammar_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

const json kWeather = json::parse(R"({
  "type": "object",
  "properties": {
    "city": {"type": "string"},
    "unit": {"enum": ["c", "f"]},
    "days": {"type": "integer"}
  },
  "required": ["city"],
  "additionalProperties": false
})");
// A name that begins another one, with an open schema.
const json kGet = json::parse(R"({"type": "object", "properties": {"q": {"type": "string"}}})");

// The test's tools: name -> schema (null: any object, a tool without parameters).
const std::map<std::string, json> kTools = {
    {"get_weather", kWeather}, {"get", kGet}, {"ping", nullptr}};

// The rules and where the reply starts: what a request gives ToolCallPrefix.
struct Mode : ToolCallRules {
  bool may_think = false;
  bool starts_in_think = false;
  ToolCallPrefix prefix() const { return ToolCallPrefix(*this, may_think, starts_in_think); }
};

Mode rules_for(bool forced, bool parallel, bool may_think = false, bool starts_in_think = false,
               ToolCallFormat format = ToolCallFormat::kHermes) {
  Mode r;
  r.format = format;
  for (const auto& [name, schema] : kTools)
    r.add(name, schema.is_null() ? nullptr : std::make_shared<const JsonSchema>(schema));
  r.forced = forced;
  r.parallel = parallel;
  r.may_think = may_think;
  r.starts_in_think = starts_in_think;
  return r;
}

// Llama 3.1's rules: the whole answer is {"name": ..., "parameters": ...}.
Mode llama_rules(bool forced) {
  return rules_for(forced, true, false, false, ToolCallFormat::kLlamaJson);
}

// A call in the format's frame.
struct Frame {
  std::string_view open, mid, close;
};
Frame frame(ToolCallFormat format) {
  if (format == ToolCallFormat::kLlamaJson) return {"{\"name\": \"", ", \"parameters\": ", "}"};
  return {"<tool_call>\n{\"name\": \"", ", \"arguments\": ", "}\n</tool_call>"};
}

std::string call(std::string_view name, std::string_view args,
                 ToolCallFormat format = ToolCallFormat::kHermes) {
  const Frame f = frame(format);
  return std::string(f.open) + std::string(name) + "\"" + std::string(f.mid) + std::string(args) +
         std::string(f.close);
}

// How many bytes of s the grammar takes before it refuses one, and its state after them.
struct Fed {
  size_t taken = 0;
  bool complete = false;
  bool may_end = false;
  int calls = 0;
};
Fed feed_all(const Mode& rules, std::string_view s) {
  ToolCallPrefix p = rules.prefix();
  Fed f;
  for (char c : s) {
    if (!p.feed(static_cast<uint8_t>(c))) break;
    ++f.taken;
  }
  f.complete = p.complete();
  f.may_end = p.may_end();
  f.calls = p.calls();
  return f;
}

// --- the independent reader ------------------------------------------------------------------

// A call at text[*pos]: the frame's fixed pieces, a known name, arguments that parse to an
// object valid for the tool (followed directly by the frame's close). Advances *pos past it.
bool read_call(std::string_view text, size_t* pos,
               ToolCallFormat format = ToolCallFormat::kHermes) {
  const Frame fr = frame(format);
  const std::string_view open = fr.open;
  if (!text.substr(*pos).starts_with(open)) return false;
  size_t i = *pos + open.size();
  const size_t quote = text.find('"', i);
  if (quote == std::string_view::npos) return false;
  const auto tool = kTools.find(std::string(text.substr(i, quote - i)));
  if (tool == kTools.end()) return false;
  i = quote + 1;
  const std::string_view mid = fr.mid;
  if (!text.substr(i).starts_with(mid)) return false;
  i += mid.size();
  const std::string_view close = fr.close;
  for (size_t end = text.find(close, i); end != std::string_view::npos;
       end = text.find(close, end + 1)) {
    const std::string_view args = text.substr(i, end - i);
    json v;
    try {
      v = json::parse(args);
    } catch (const json::exception&) {
      continue;  // the close found lies inside the arguments: a later one may end them
    }
    // The object must be followed by the frame's close at once.
    if (args.empty() || args.back() != '}' || !v.is_object()) return false;
    if (!tool->second.is_null() && !test::valid(v, tool->second, tool->second)) return false;
    *pos = end + close.size();
    return true;
  }
  return false;
}

// Llama's format: forced, the answer is one call; lazy, an answer that spells the call's
// opening after blanks must be one call, any other is text.
bool llama_reader_accepts(const Mode& rules, std::string_view text) {
  size_t pos = 0;
  if (!rules.forced)
    while (pos < text.size() &&
           std::string_view(" \n\r\t").find(text[pos]) != std::string_view::npos)
      ++pos;
  const Frame fr = frame(ToolCallFormat::kLlamaJson);
  if (!rules.forced && !text.substr(pos).starts_with(fr.open)) return true;
  return read_call(text, &pos, ToolCallFormat::kLlamaJson) && pos == text.size();
}

// The whole reply is what the rules admit, ended where an end of generation may come.
bool reader_accepts(const Mode& rules, std::string_view text) {
  if (rules.format == ToolCallFormat::kLlamaJson) return llama_reader_accepts(rules, text);
  size_t pos = 0;
  bool in_think = rules.starts_in_think;
  if (!in_think) {
    size_t i = 0;
    if (!rules.forced)
      while (i < text.size() && std::string_view(" \n\r\t").find(text[i]) != std::string_view::npos)
        ++i;
    if ((!rules.forced || rules.may_think) && text.substr(i).starts_with("<think>")) {
      in_think = true;
      pos = i + 7;
    }
  }
  if (in_think) {
    const size_t close = text.find("</think>", pos);
    if (close == std::string_view::npos) return !rules.forced;
    pos = close + 8;
    if (rules.forced) {
      size_t blanks = 0;
      while (pos < text.size() &&
             std::string_view(" \n\r\t").find(text[pos]) != std::string_view::npos) {
        ++pos;
        ++blanks;
      }
      if (blanks > static_cast<size_t>(ToolCallPrefix::kMaxGap)) return false;
    }
  }
  if (!rules.forced) {  // free text; each "<tool_call>" opens a call
    for (size_t at = text.find("<tool_call>", pos); at != std::string_view::npos;
         at = text.find("<tool_call>", pos)) {
      pos = at;
      if (!read_call(text, &pos)) return false;
    }
    return true;
  }
  if (!read_call(text, &pos)) return false;
  while (rules.parallel && pos < text.size()) {
    if (text[pos] != '\n') return false;
    ++pos;
    if (!read_call(text, &pos)) return false;
  }
  return pos == text.size();
}

// --- hand-written cases ----------------------------------------------------------------------

TEST(ToolCallPrefix, ForcedTakesOneCallAndRefusesAtTheFirstWrongByte) {
  const Mode one = rules_for(/*forced=*/true, /*parallel=*/false);
  const std::string good = call("get_weather", R"({"city": "Paris", "unit": "c"})");
  Fed f = feed_all(one, good);
  EXPECT_EQ(f.taken, good.size());
  EXPECT_TRUE(f.complete);
  EXPECT_EQ(f.calls, 1);
  EXPECT_EQ(feed_all(one, good + "\n").taken, good.size());  // nothing after the one call

  EXPECT_EQ(feed_all(one, " " + good).taken, 0u);  // no text before the call
  // Each refused at its last byte.
  const std::string weather = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": ";
  const std::string refused[] = {
      "<tool_call>{",                       // the frame's newline
      "<tool_call>\n{\"name\":\"",          // its space
      "<tool_call>\n{\"name\": \"get_w\"",  // not a tool's name
      "<tool_call>\n{\"name\": \"n",
      "<tool_call>\n{\"name\": \"get\",\"",  // the space after the comma
      weather + "{\"city\": 1",              // a string
      weather + "{}",                        // city is required
      weather + "{\"city\": \"x\"} ",        // the frame's close right after the object
  };
  for (const std::string& text : refused) {
    f = feed_all(one, text);
    EXPECT_EQ(f.taken, text.size() - 1) << json(text).dump();
    EXPECT_FALSE(f.may_end) << json(text).dump();
  }
}

TEST(ToolCallPrefix, ForcedParallelTakesCallsSeparatedByANewline) {
  const Mode many = rules_for(true, true);
  const std::string two = call("get", R"({"q": "x", "more": [1, 2]})") + "\n" + call("ping", "{}");
  Fed f = feed_all(many, two);
  EXPECT_EQ(f.taken, two.size());
  EXPECT_FALSE(f.complete);  // another call may follow
  EXPECT_TRUE(f.may_end);    // or the reply ends
  EXPECT_EQ(f.calls, 2);
  EXPECT_EQ(feed_all(many, two + " ").taken, two.size());
  // Mid-call, no end; after a newline the next call must come.
  EXPECT_FALSE(feed_all(many, two.substr(0, 30)).may_end);
  EXPECT_FALSE(feed_all(many, two.substr(0, two.find('\n', 70) + 1)).may_end);
}

TEST(ToolCallPrefix, NamesThatBeginOthersAreToldApartByTheirQuote) {
  const Mode one = rules_for(true, false);
  // "get" takes other properties; "get_weather" does not.
  EXPECT_TRUE(feed_all(one, call("get", R"({"city": "x", "q": "y"})")).complete);
  const std::string weather = call("get_weather", R"({"city": "x", "q": "y"})");
  EXPECT_EQ(feed_all(one, weather).taken, weather.find("\"q\"") + 1);
}

TEST(ToolCallPrefix, ForcedMayThinkFirstWhereTheTemplateThinks) {
  const Mode think = rules_for(true, false, /*may_think=*/true);
  const std::string c = call("ping", R"({"n": 1})");
  for (const std::string& reply : {"<think>\nPing it. <tool_call> is the format.\n</think>\n\n" + c,
                                   c, "<think></think>" + c}) {
    const Fed f = feed_all(think, reply);
    EXPECT_EQ(f.taken, reply.size()) << json(reply).dump();
    EXPECT_TRUE(f.complete);
  }
  const std::string thought = "<think>\nhm\n</think>";
  EXPECT_FALSE(feed_all(think, thought).may_end);  // a forced reply must call
  EXPECT_EQ(feed_all(think, thought + "\n\n\n\n\n" + c).taken, thought.size() + 4);
  EXPECT_EQ(feed_all(think, thought + "\nOK" + c).taken, thought.size() + 1);
  EXPECT_EQ(feed_all(think, "<thx").taken, 3u);
  // Without thinking the reply is the call from its first byte.
  EXPECT_EQ(feed_all(rules_for(true, false), "<think>").taken, 2u);
  // A prompt that opened the think block: the reply starts inside it.
  const std::string inside = "so ping.\n</think>\n\n" + c;
  EXPECT_TRUE(feed_all(rules_for(true, false, true, /*starts_in_think=*/true), inside).complete);
}

TEST(ToolCallPrefix, AutoHoldsOnlyTheBlocksTheModelOpens) {
  const Mode lazy = rules_for(/*forced=*/false, true);
  const std::string reply =
      "Let me look: a <b, <<tool_call>\n{\"name\": \"ping\", \"arguments\": "
      "{}}\n</tool_call> and </tool_call> <tool_";
  Fed f = feed_all(lazy, reply);
  EXPECT_EQ(f.taken, reply.size());
  EXPECT_TRUE(f.may_end);
  EXPECT_FALSE(f.complete);
  EXPECT_EQ(f.calls, 1);
  // Inside a block: no end, and the frame.
  const std::string open = "Sure. <tool_call>\n{\"name\": \"";
  EXPECT_FALSE(feed_all(lazy, open).may_end);
  EXPECT_EQ(feed_all(lazy, open + "pong\"").taken, open.size() + 1);
  EXPECT_EQ(feed_all(lazy, "x<tool_call> {").taken, 12u);
  // A leading think block (after blanks) is free, tags and all; after it, blocks are held.
  const std::string think = "\n <think>the <tool_call> tag, bad json {</think>\n";
  EXPECT_EQ(feed_all(lazy, think).taken, think.size());
  EXPECT_EQ(feed_all(lazy, think + "<tool_call>x").taken, think.size() + 11);
  // A think block later in the text is text: its tags do not free a block.
  const std::string late = "a<think><tool_call>\n{\"name\": \"x";
  EXPECT_EQ(feed_all(lazy, late).taken, late.size() - 1);
  // "<thi" that turns out not to be a think block may still open a call.
  EXPECT_EQ(feed_all(lazy, "<th<tool_call>\n{\"name\": \"pong").taken, 26u);
}

TEST(ToolCallPrefix, LlamasForcedAnswerIsOneCall) {
  const Mode one = llama_rules(/*forced=*/true);
  const std::string good = call("get_weather", R"({"city": "Paris"})", ToolCallFormat::kLlamaJson);
  ASSERT_EQ(good, R"({"name": "get_weather", "parameters": {"city": "Paris"}})");
  Fed f = feed_all(one, good);
  EXPECT_EQ(f.taken, good.size());
  EXPECT_TRUE(f.complete);
  EXPECT_EQ(f.calls, 1);
  EXPECT_EQ(feed_all(one, good + "\n").taken, good.size());  // the answer ends with the call
  EXPECT_EQ(feed_all(one, " " + good).taken, 0u);
  // Even where the request allows parallel calls: the template writes one call per turn.
  EXPECT_EQ(feed_all(one, good + good).taken, good.size());
  const std::string refused[] = {
      "{\"name\":\"",                                              // the frame's space
      "{\"name\": \"get_w\"",                                      // not a tool's name
      "{\"name\": \"get\", \"a",                                   // Llama's key is "parameters"
      "{\"name\": \"get_weather\", \"parameters\": {\"city\": 1",  // the schema's string
      "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"x\"} ",  // '}' right after
  };
  for (const std::string& text : refused) {
    f = feed_all(one, text);
    EXPECT_EQ(f.taken, text.size() - 1) << json(text).dump();
    EXPECT_FALSE(f.may_end) << json(text).dump();
  }
}

TEST(ToolCallPrefix, LlamasLazyAnswerIsACallOnlyWhereItStartsAsOne) {
  const Mode lazy = llama_rules(/*forced=*/false);
  const std::string ping = call("ping", "{}", ToolCallFormat::kLlamaJson);
  for (const std::string& reply : {ping, "\n  " + ping}) {
    const Fed f = feed_all(lazy, reply);
    EXPECT_EQ(f.taken, reply.size());
    EXPECT_TRUE(f.complete);  // nothing more: the reply ends
    EXPECT_EQ(feed_all(lazy, reply + " ").taken, reply.size());
  }
  // Text, or JSON that is not the call's opening: free to its end, calls and all.
  for (const std::string& reply : {"It is " + ping, std::string("{\"na"), std::string("{\"x\": 1}"),
                                   std::string("{\"name\":\"pong\"}"), "Sure.\n" + ping}) {
    const Fed f = feed_all(lazy, reply);
    EXPECT_EQ(f.taken, reply.size()) << reply;
    EXPECT_TRUE(f.may_end);
    EXPECT_FALSE(f.complete);
    EXPECT_EQ(f.calls, 0);
  }
  // Once the opening is spelled, the name is one of the tools and no end comes before the call
  // closes.
  const std::string open = " {\"name\": \"";
  EXPECT_FALSE(feed_all(lazy, open).may_end);
  EXPECT_EQ(feed_all(lazy, open + "po").taken, open.size() + 1);
  EXPECT_FALSE(feed_all(lazy, open + "ping\", \"parameters\": {").may_end);
}

// --- against the reader ----------------------------------------------------------------------

std::string random_args(std::mt19937& rng, const std::string& name) {
  const json& schema = kTools.at(name);
  if (schema.is_null()) {
    const char* any[] = {"{}", R"({"a": [1, {"b": null}], "c": "}\n</tool_call>"})",
                         R"({ "x" : true })"};
    return any[rng() % std::size(any)];
  }
  json v = test::instance(rng, schema, schema, 2);
  if (rng() % 3 == 0) v["city"] = "caf\xc3\xa9 \"}\"";
  // Compact: a one-byte mutation then never makes a whitespace run the grammar limits (two line
  // breaks) where JSON has none.
  return v.dump();
}

std::string random_reply(std::mt19937& rng, const Mode& rules) {
  const char* names[] = {"get_weather", "get", "ping"};
  const auto one_call = [&] {
    const std::string name = names[rng() % std::size(names)];
    return call(name, random_args(rng, name), rules.format);
  };
  std::string r;
  if (rules.format == ToolCallFormat::kLlamaJson) {
    if (rules.forced) return one_call();
    const char* text[] = {"Sure.", "{\"na", "{\"name\": 1}", "{\"x\": {}}", "ok {", "\n"};
    if (rng() % 2) r += std::string(" \n").substr(0, rng() % 3);
    return r + (rng() % 2 ? one_call() : std::string(text[rng() % std::size(text)]));
  }
  if (!rules.starts_in_think && (!rules.forced || rules.may_think) && rng() % 3 == 0) {
    if (!rules.forced && rng() % 2) r += "\n ";
    r += "<think>";
  }
  if (rules.starts_in_think || r.ends_with("<think>"))
    r += std::string("I could call <tool_call> now.").substr(0, rng() % 30) + "</think>\n\n";
  if (rules.forced) {
    r += one_call();
    for (int n = static_cast<int>(rng() % 3); rules.parallel && n > 0; --n) {
      r += '\n';
      r += one_call();
    }
    return r;
  }
  const char* free_text[] = {"Sure.", "a < b", "<tool", "</tool_call>", "\n", "<<", "ok"};
  for (int n = static_cast<int>(rng() % 5); n > 0; --n)
    r += rng() % 2 ? one_call() : std::string(free_text[rng() % std::size(free_text)]);
  return r;
}

// After every prefix the grammar takes (up to `taken`), some byte continues it, or the reply
// may end there.
void expect_no_dead_end(const Mode& rules, std::string_view s, size_t taken) {
  ToolCallPrefix p = rules.prefix();
  for (size_t i = 0; i <= taken; ++i) {
    if (p.complete()) return;
    bool some = p.may_end();
    for (int b = 0; b < 256 && !some; ++b) {
      ToolCallPrefix next = p;
      some = next.feed(static_cast<uint8_t>(b));
    }
    ASSERT_TRUE(some) << "no byte continues " << json(std::string(s.substr(0, i))).dump();
    if (i < taken) {
      ASSERT_TRUE(p.feed(static_cast<uint8_t>(s[i])));
    }
  }
}

TEST(ToolCallPrefix, AgreesWithTheReaderOnRandomRepliesAndMutations) {
  std::mt19937 rng(1207);
  const char significant[] = "<>/\n {}\":,_tcolnamegpiwh0123456789";
  const Mode modes[] = {rules_for(true, false),      rules_for(true, true),
                        rules_for(true, true, true), rules_for(true, false, true, true),
                        rules_for(false, true),      rules_for(false, true, false, true),
                        llama_rules(true),           llama_rules(false)};
  int taken = 0, refused = 0;
  for (const Mode& rules : modes) {
    for (int i = 0; i < 150; ++i) {
      const std::string reply = random_reply(rng, rules);
      SCOPED_TRACE(json(reply).dump());
      const Fed whole = feed_all(rules, reply);
      ASSERT_TRUE(reader_accepts(rules, reply));
      ASSERT_EQ(whole.taken, reply.size());
      ASSERT_TRUE(whole.may_end || whole.complete);
      for (int m = 0; m < 20 && !reply.empty(); ++m) {
        std::string d = reply;
        d[rng() % d.size()] = rng() % 8 == 0 ? static_cast<char>(rng() % 256)
                                             : significant[rng() % (sizeof(significant) - 1)];
        const Fed f = feed_all(rules, d);
        if (m % 5 == 0) expect_no_dead_end(rules, d, f.taken);
        const bool ours = f.taken == d.size() && (f.may_end || f.complete);
        ASSERT_EQ(ours, reader_accepts(rules, d))
            << "mutant: " << json(d).dump(-1, ' ', true, json::error_handler_t::replace)
            << " taken " << f.taken;
        (ours ? taken : refused) += 1;
      }
    }
  }
  // The mutations reach both sides.
  EXPECT_GT(taken, 3500);
  EXPECT_GT(refused, 10000);
}

// --- the token filter over Qwen's vocabulary ---------------------------------------------------

// Llama 3.1's call over Llama-3's vocabulary: forced, the end comes only after the call closes;
// lazy, the tokens that open the answer as text (control tokens too) are free, and the ones
// that spell the opening lead into the call.
TEST(ToolCallConstraint, LlamasCallOverLlama3sVocabulary) {
  XTILE_REQUIRE_FIXTURE(path, "tokenizers/vocab-llama3.gguf");
  const gguf::File file = gguf::File::open(path);
  const std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(file);
  const TokenBytes bytes(*tok);
  const std::string text =
      call("get_weather", R"({"city": "Oslo", "days": 3})", ToolCallFormat::kLlamaJson);
  const int32_t eot = tok->find_token("<|eot_id|>");
  const int32_t python_tag = tok->find_token("<|python_tag|>");
  ASSERT_TRUE(tok->is_eog(eot));
  for (bool forced : {true, false}) {
    const Mode rules = llama_rules(forced);
    GrammarConstraint<ToolCallPrefix> c(bytes, rules.prefix());
    EXPECT_EQ(c.allows(eot), !forced);
    EXPECT_EQ(c.allows(python_tag), !forced);
    for (int32_t id : tok->encode(text, false, false)) {
      ASSERT_NO_FATAL_FAILURE(test::expect_mask_matches_allows(c, tok->n_vocab(), 3));
      ASSERT_TRUE(c.accept(id)) << tok->decode_token(id);
      if (!c.complete()) {
        EXPECT_EQ(c.allows(eot), !forced && c.grammar().free_text());
      }
    }
    EXPECT_TRUE(c.complete());
    EXPECT_TRUE(c.allows(eot));
    EXPECT_FALSE(c.allows(tok->encode("\n", false, false)[0]));
  }
  const Mode lazy = llama_rules(false);  // kept: the constraint's grammar points to its rules
  GrammarConstraint<ToolCallPrefix> text_answer(bytes, lazy.prefix());
  for (int32_t id : tok->encode("Oslo is sunny {\"name\": \"x\"}", false, false))
    ASSERT_TRUE(text_answer.accept(id)) << tok->decode_token(id);
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()), 1.0f);
  EXPECT_EQ(text_answer.mask(logits), tok->n_vocab());
}

TEST(ToolCallConstraint, MaskFollowsTheGrammarAndEndsOnlyAfterACall) {
  XTILE_REQUIRE_FIXTURE(path, "tokenizers/vocab-qwen2.gguf");
  const gguf::File file = gguf::File::open(path);
  const std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(file);
  const TokenBytes bytes(*tok);
  const Mode rules = rules_for(true, true);
  GrammarConstraint<ToolCallPrefix> c(bytes, rules.prefix());
  const std::vector<int32_t> ids =
      tok->encode(call("get_weather", R"({"city": "Oslo", "days": 3})"), false, false);
  const int32_t eog = tok->eog_ids().front();
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()));
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(test::expect_mask_matches_allows(c, tok->n_vocab(), 3));
    EXPECT_FALSE(c.allows(eog)) << "before token " << i;
    ASSERT_TRUE(c.accept(ids[i])) << "token " << i << " " << tok->decode_token(ids[i]);
  }
  EXPECT_TRUE(c.allows(eog));  // the call closed: the reply may end, or go on with '\n'
  EXPECT_TRUE(c.allows(tok->encode("\n", false, false)[0]));
  std::fill(logits.begin(), logits.end(), 1.0f);
  c.mask(logits);
  EXPECT_TRUE(std::isfinite(logits[static_cast<size_t>(eog)]));
  EXPECT_FALSE(std::isfinite(logits[static_cast<size_t>(tok->encode("x", false, false)[0])]));
}

// With tool_choice auto the reply is free text outside the blocks the model opens: there every
// token may come, control tokens and the end included, as without the grammar; inside a block
// neither may.
TEST(ToolCallConstraint, AutoLeavesFreeTextAlone) {
  XTILE_REQUIRE_FIXTURE(path, "tokenizers/vocab-qwen2.gguf");
  const gguf::File file = gguf::File::open(path);
  const std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(file);
  const TokenBytes bytes(*tok);
  const Mode rules = rules_for(/*forced=*/false, true);
  GrammarConstraint<ToolCallPrefix> c(bytes, rules.prefix());
  int32_t control = -1;
  for (int32_t id = 0; id < tok->n_vocab() && control < 0; ++id)
    if (tok->is_control(id) && !tok->is_eog(id)) control = id;
  ASSERT_GE(control, 0);
  const int32_t eog = tok->eog_ids().front();
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()));
  const auto all_kept = [&] {
    std::fill(logits.begin(), logits.end(), 1.0f);
    return c.mask(logits) == tok->n_vocab();
  };
  EXPECT_TRUE(all_kept());
  for (int32_t id : tok->encode("Let me check.", false, false)) ASSERT_TRUE(c.accept(id));
  EXPECT_TRUE(c.allows(control));
  EXPECT_TRUE(c.allows(eog));
  ASSERT_TRUE(c.accept(control));
  for (int32_t id : tok->encode(" <tool_call>\n{\"name\": \"pi", false, false))
    ASSERT_TRUE(c.accept(id)) << tok->decode_token(id);
  EXPECT_FALSE(c.allows(control));
  EXPECT_FALSE(c.allows(eog));
  EXPECT_FALSE(c.allows(-1));
  EXPECT_FALSE(c.allows(tok->n_vocab()));
  for (int32_t id : tok->encode("ng\", \"arguments\": {}}\n</tool_call>", false, false))
    ASSERT_TRUE(c.accept(id)) << tok->decode_token(id);
  EXPECT_TRUE(all_kept());  // free text again
}

// The mask goes through the memo of steps (ToolCallPrefix::memo_key): along a lazy reply with
// a think block, free text and two calls of different tools (the second call's states meet the
// memo the first one filled), it keeps exactly what each token's own check allows.
TEST(ToolCallConstraint, MaskThroughTheMemoKeepsExactlyWhatEachTokenAllows) {
  XTILE_REQUIRE_FIXTURE(path, "tokenizers/vocab-qwen2.gguf");
  const gguf::File file = gguf::File::open(path);
  const std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(file);
  const TokenBytes bytes(*tok);
  static_assert(MemoKeyed<ToolCallPrefix>);
  const Mode rules = rules_for(/*forced=*/false, true, /*may_think=*/true);
  GrammarConstraint<ToolCallPrefix> c(bytes, rules.prefix());
  const std::string text = "<think>\nweather first</think>\n\nChecking. " +
                           call("get_weather", R"({"city": "Oslo", "unit": "c", "days": 3})") +
                           "\n" + call("get", R"({"q": "Oslo \"news\"", "n": [1, {}]})") + " done";
  for (int32_t id : tok->encode(text, false, false)) {
    ASSERT_NO_FATAL_FAILURE(test::expect_mask_matches_allows(c, tok->n_vocab(), 5))
        << "before " << tok->decode_token(id);
    ASSERT_TRUE(c.accept(id)) << tok->decode_token(id);
  }
  EXPECT_EQ(c.grammar().calls(), 2);
}

}  // namespace tool_call_grammar_test
}  // namespace
}  // namespace xtile::server
