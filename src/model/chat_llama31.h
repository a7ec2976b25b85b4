// Llama 3.1 / 3.2 / 3.3 Instruct's chat format, as Meta's templates in their GGUFs write it
// (rendered here without Jinja; chat_template.h picks the family).
//
//   <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n
//   [Environment: ipython\n]Cutting Knowledge Date: December 2023\nToday Date: DATE\n\n
//   [tool instructions and definitions, when not in the first user message]SYSTEM<|eot_id|>
//   [<|start_header_id|>user<|end_header_id|>\n\n tool instructions, definitions, FIRST USER
//    MESSAGE<|eot_id|>]
//   then each turn: <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT (trimmed)<|eot_id|>;
//   a call: the assistant's turn is {"name": "NAME", "parameters": ARGUMENTS} (one call per
//   turn); a result: an "ipython" turn whose content is the text as a JSON string.
//
// The system turn is always written, with or without a system message: the models were tuned
// on it, and a prompt without it is not the one the template makes.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "model/chat_template.h"

namespace xtile {

// date: the "Today Date" line's text ("26 Jul 2024"). Fails on an assistant turn with more
// than one call (the template's rule: "This model only supports single tool-calls at once"), and
// on tools offered in the first user message when the conversation has no message after the
// system's.
std::string render_llama31(std::span<const ChatMessage> msgs, const ChatOptions& o,
                           std::string_view date);

// Today in local time as strftime's "%d %b %Y" writes it ("07 Dec 2026"): Llama 3.2's
// template's strftime_now("%d %b %Y").
std::string llama32_today();

}  // namespace xtile
