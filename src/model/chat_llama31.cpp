#include "model/chat_llama31.h"

#include <cstdio>
#include <ctime>

#include "base/error.h"
#include "model/chat_text.h"

namespace xtile {
namespace {

using chat_text::trim;

constexpr std::string_view kBos = "<|begin_of_text|>";
constexpr std::string_view kEot = "<|eot_id|>";

// The templates' instructions before the definitions, word for word: in the system turn
// (tools_in_user_message false) and in the first user message (the default).
constexpr std::string_view kSystemToolsIntro =
    "You have access to the following functions. To call a function, please respond with JSON "
    "for a function call.Respond in the format {\"name\": function name, \"parameters\": "
    "dictionary of argument name and its value}.Do not use variables.\n\n";
constexpr std::string_view kUserToolsIntro =
    "Given the following functions, please respond with a JSON for a function call with its "
    "proper arguments that best answers the given prompt.\n\nRespond in the format {\"name\": "
    "function name, \"parameters\": dictionary of argument name and its value}.Do not use "
    "variables.\n\n";

std::string header(std::string_view role) {
  std::string out = "<|start_header_id|>";
  out += role;
  out += "<|end_header_id|>\n\n";
  return out;
}

// The definitions, each as tojson(indent=4) wrote it and a blank line.
void append_tools(const ChatOptions& o, std::string* out) {
  for (const std::string& t : o.tools) {
    *out += t;
    *out += "\n\n";
  }
}

// A string through the template's `tojson` (Python's json.dumps with ensure_ascii=False): quoted,
// with '"', '\\' and the control characters escaped, everything else as it is.
std::string json_quoted(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char u[8];
          std::snprintf(u, sizeof u, "\\u%04x", c);
          out += u;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

}  // namespace

std::string render_llama31(std::span<const ChatMessage> msgs, const ChatOptions& o,
                           std::string_view date) {
  const bool tools = !o.tools.empty();
  size_t i = 0;
  std::string_view system;
  if (!msgs.empty() && msgs[0].role == "system") system = trim(msgs[i++].content);

  std::string out = o.bos_text ? std::string(kBos) : std::string();
  out += header("system");
  if (tools) out += "Environment: ipython\n";
  out += "Cutting Knowledge Date: December 2023\nToday Date: ";
  out += date;
  out += "\n\n";
  if (tools && !o.tools_in_user_message) {
    out += kSystemToolsIntro;
    append_tools(o, &out);
  }
  out += system;
  out += kEot;

  // The template takes the first message after the system's, whatever its role, as the user's.
  if (tools && o.tools_in_user_message) {
    if (i == msgs.size())
      fail(
          "chat template llama3.1: the tools go into the first user message, and there is no "
          "message after the system's");
    out += header("user");
    out += kUserToolsIntro;
    append_tools(o, &out);
    out += trim(msgs[i++].content);
    out += kEot;
  }

  for (; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    if (!m.tool_calls.empty()) {
      if (m.tool_calls.size() != 1)
        fail("chat template llama3.1: an assistant turn carries ", m.tool_calls.size(),
             " tool calls; these models make one call per turn (the template's rule)");
      out += header("assistant");
      out += "{\"name\": \"" + m.tool_calls[0].name + "\", \"parameters\": ";
      out += m.tool_calls[0].arguments;
      out += "}";
    } else if (m.role == "tool" || m.role == "ipython") {
      out += header("ipython");
      out += json_quoted(m.content);  // a string is `iterable` to Jinja: it goes through tojson
    } else {
      out += header(m.role);
      out += trim(m.content);
    }
    out += kEot;
  }
  if (o.add_generation_prompt) out += header("assistant");
  return out;
}

std::string llama32_today() {
  // Month names spelled here: strftime's %b follows the locale, the template's is English.
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char out[32];
  std::snprintf(out, sizeof out, "%02d %s %d", local.tm_mday, kMonths[local.tm_mon],
                local.tm_year + 1900);
  return out;
}

}  // namespace xtile
