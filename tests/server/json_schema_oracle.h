// The JSON schema tests' oracle: a validator of the subset json_schema.h compiles, written from
// JSON Schema's definitions and walking a document nlohmann::json parsed, and a generator of
// random instances. Shared by the schema tests and the tool-call grammar's.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace xtile::server::test {

using nlohmann::json;

// Valid UTF-8 as code points, one per wchar_t (32 bits here), for std::wregex.
inline std::wstring wide(const std::string& s) {
  std::wstring out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    uint32_t v = len == 1 ? c : c & (0x7fu >> len);
    for (int k = 1; k < len && i + static_cast<size_t>(k) < s.size(); ++k)
      v = v << 6 | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3fu);
    out += static_cast<wchar_t>(v);
    i += static_cast<size_t>(len);
  }
  return out;
}

// JSON Schema's `pattern`: an ECMA-262 expression found anywhere in the string (std::wregex's
// ECMAScript grammar, searched).
inline bool pattern_ok(const std::string& pattern, const std::string& s) {
  const std::wregex re(wide(pattern), std::regex::ECMAScript);
  return std::regex_search(wide(s), re);
}

// RFC 1123 host names, label by label; with `whole`, at most 253 characters in all (an e-mail
// address's host part is not held to that total).
inline bool hostname_ok(std::string_view s, bool whole = false) {
  if (whole && s.size() > 253) return false;
  for (size_t start = 0;;) {
    const size_t dot = s.find('.', start);
    const std::string_view label =
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
        return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// RFC 5322's dot-atom, '@', a host name.
inline bool email_ok(std::string_view s) {
  const size_t at = s.rfind('@');
  if (at == std::string_view::npos) return false;
  const std::string_view local = s.substr(0, at);
  const std::string_view atext = "!#$%&'*+/=?^_`{|}~-";
  bool atom_empty = true;
  for (char c : local) {
    if (c == '.') {
      if (atom_empty) return false;
      atom_empty = true;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               atext.find(c) != std::string_view::npos) {
      atom_empty = false;
    } else {
      return false;
    }
  }
  return !atom_empty && hostname_ok(s.substr(at + 1));
}

// JSON Schema's duration (RFC 3339 appendix A), read as its units: the date part's units
// one of D, M, MD, Y, YM, YMD (or W alone), the time part's one of H, HM, HMS, M, MS, S.
inline bool duration_ok(std::string_view s) {
  if (s.size() < 2 || s[0] != 'P') return false;
  std::string date_units, time_units;
  bool in_time = false;
  for (size_t i = 1; i < s.size();) {
    if (s[i] == 'T') {
      if (in_time) return false;
      in_time = true;
      ++i;
      continue;
    }
    size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
    if (digits == 0 || i == s.size()) return false;
    (in_time ? time_units : date_units) += s[i++];
  }
  const auto one_of = [](const std::string& u, std::initializer_list<const char*> ok) {
    for (const char* o : ok)
      if (u == o) return true;
    return false;
  };
  if (date_units == "W") return !in_time;
  if (!date_units.empty() && !one_of(date_units, {"D", "M", "MD", "Y", "YM", "YMD"})) return false;
  if (in_time && !one_of(time_units, {"H", "HM", "HMS", "M", "MS", "S"})) return false;
  return !date_units.empty() || in_time;
}

// RFC 3986, read by hand from its ABNF (section 3 and appendix A): a URI, or with `reference`
// a URI or a relative reference.
inline bool uri_ok(const std::string& s, bool reference) {
  const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  const auto hex = [&](char c) {
    return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  const auto unreserved = [&](char c) {
    return alpha(c) || digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
  };
  const auto sub_delim = [](char c) {
    return std::string_view("!$&'()*+,;=").find(c) != std::string_view::npos;
  };
  // Every character of t is allowed by `ok` or begins a percent-encoded octet.
  const auto all = [&](std::string_view t, auto ok) {
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i] == '%') {
        if (i + 2 >= t.size() + 0 || !hex(t[i + 1]) || !hex(t[i + 2])) return false;
        i += 2;
      } else if (!ok(t[i])) {
        return false;
      }
    }
    return true;
  };
  const auto pchar = [&](char c) { return unreserved(c) || sub_delim(c) || c == ':' || c == '@'; };
  const auto path_char = [&](char c) { return pchar(c) || c == '/'; };
  const auto query_char = [&](char c) { return pchar(c) || c == '/' || c == '?'; };
  const auto authority_ok = [&](std::string_view a) {
    const size_t at = a.find('@');
    if (at != std::string_view::npos) {
      if (!all(a.substr(0, at), [&](char c) { return unreserved(c) || sub_delim(c) || c == ':'; }))
        return false;
      a = a.substr(at + 1);
    }
    std::string_view host = a, port;
    if (!a.empty() && a[0] == '[') {
      const size_t close = a.find(']');
      if (close == std::string_view::npos) return false;
      const std::string inside(a.substr(1, close - 1));
      unsigned char addr[16];
      const bool v6 = inet_pton(AF_INET6, inside.c_str(), addr) == 1;
      bool future = inside.size() > 2 && (inside[0] == 'v' || inside[0] == 'V');
      if (future) {
        const size_t dot = inside.find('.');
        future = dot != std::string::npos && dot > 1 && dot + 1 < inside.size();
        for (size_t i = 1; future && i < dot; ++i) future = hex(inside[i]);
        for (size_t i = dot + 1; future && i < inside.size(); ++i)
          future = unreserved(inside[i]) || sub_delim(inside[i]) || inside[i] == ':';
      }
      if (!v6 && !future) return false;
      const std::string_view rest = a.substr(close + 1);
      if (rest.empty()) return true;
      if (rest[0] != ':') return false;
      port = rest.substr(1);
      for (char c : port)
        if (!digit(c)) return false;
      return true;
    }
    const size_t colon = a.find(':');
    if (colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
      for (char c : port)
        if (!digit(c)) return false;
    }
    return all(host, [&](char c) { return unreserved(c) || sub_delim(c); });
  };
  // The part before '?' and '#': "//" authority path-abempty, or a path (its first segment
  // without ':' when `noscheme`).
  const auto hier_ok = [&](std::string_view h, bool noscheme) {
    if (h.substr(0, 2) == "//") {
      h = h.substr(2);
      const size_t slash = h.find('/');
      return authority_ok(h.substr(0, slash)) &&
             (slash == std::string_view::npos || all(h.substr(slash), path_char));
    }
    if (noscheme && !h.empty() && h[0] != '/') {
      const std::string_view first = h.substr(0, h.find('/'));
      if (first.find(':') != std::string_view::npos) return false;
    }
    return all(h, path_char);
  };
  const auto tail_ok = [&](std::string_view rest, bool noscheme) {
    const size_t hash = rest.find('#');
    if (hash != std::string_view::npos) {
      if (!all(rest.substr(hash + 1), query_char)) return false;
      rest = rest.substr(0, hash);
    }
    const size_t question = rest.find('?');
    if (question != std::string_view::npos) {
      if (!all(rest.substr(question + 1), query_char)) return false;
      rest = rest.substr(0, question);
    }
    return hier_ok(rest, noscheme);
  };
  const size_t colon = s.find(':');
  if (colon != std::string::npos && colon > 0 && alpha(s[0])) {
    bool scheme = true;
    for (size_t i = 1; i < colon; ++i)
      scheme = scheme && (alpha(s[i]) || digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.');
    if (scheme && tail_ok(std::string_view(s).substr(colon + 1), false)) return true;
  }
  return reference && tail_ok(s, true);
}

// Whether s is a value of a string format (json_format.h's), checked another way: the layout
// by a regular expression, the calendar by std::chrono; addresses by inet_pton, host names,
// e-mail addresses and durations by the checkers above.
inline bool format_ok(const std::string& format, const std::string& s) {
  if (format == "ipv4" || format == "ipv6") {
    unsigned char addr[16];
    return s.find('\0') == std::string::npos &&
           inet_pton(format == "ipv4" ? AF_INET : AF_INET6, s.c_str(), addr) == 1;
  }
  if (format == "hostname") return hostname_ok(s, true);
  if (format == "email") return email_ok(s);
  if (format == "duration") return duration_ok(s);
  if (format == "uri" || format == "uri-reference") return uri_ok(s, format == "uri-reference");
  static const std::string kDate = R"((\d{4})-(\d{2})-(\d{2}))";
  static const std::string kTime =
      R"(([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))";
  const auto date_ok = [](const std::smatch& m) {
    const std::chrono::year_month_day ymd{std::chrono::year(std::stoi(m[1])),
                                          std::chrono::month(std::stoul(m[2])),
                                          std::chrono::day(std::stoul(m[3]))};
    return ymd.ok();
  };
  static const std::regex date(kDate), time(kTime), date_time(kDate + "T" + kTime),
      uuid("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
  std::smatch m;
  if (format == "date") return std::regex_match(s, m, date) && date_ok(m);
  if (format == "time") return std::regex_match(s, time);
  if (format == "date-time") return std::regex_match(s, m, date_time) && date_ok(m);
  if (format == "uuid") return std::regex_match(s, uuid);
  return false;
}

// A JSON number's spelling as digits and a power of ten: value = ±digits · 10^exponent.
inline void decimal_parts(const std::string& text, std::string* digits, long* exponent) {
  digits->clear();
  *exponent = 0;
  size_t i = text[0] == '-' ? 1 : 0;
  for (bool point = false; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
    if (text[i] == '.') {
      point = true;
      continue;
    }
    *digits += text[i];
    if (point) --*exponent;
  }
  if (i < text.size()) *exponent += std::stol(text.substr(i + 1));
}

// digits (decimal) mod m.
inline __int128 digits_mod(const std::string& digits, __int128 m) {
  __int128 r = 0;
  for (char c : digits) r = (r * 10 + (c - '0')) % m;
  return r;
}

// multipleOf: x / step an integer, exactly, from the decimals the values are spelled with
// (nlohmann's shortest spelling of a double).
inline bool multiple_ok(const json& x, const json& step) {
  std::string a, b;
  long p = 0, q = 0;
  decimal_parts(x.dump(), &a, &p);
  decimal_parts(step.dump(), &b, &q);
  const __int128 m = digits_mod(b, static_cast<__int128>(1) << 100);  // b itself (short)
  if (p >= q) {  // a · 10^(p−q) ≡ 0 (mod b)
    __int128 r = digits_mod(a, m);
    for (long i = 0; i < p - q; ++i) r = r * 10 % m;
    return r == 0;
  }
  // a ≡ 0 (mod b · 10^(q−p)): its last q − p digits zeros and the rest a multiple of b
  const size_t zeros = static_cast<size_t>(q - p);
  if (a.find_first_not_of('0') == std::string::npos) return true;
  if (a.size() <= zeros || a.find_first_not_of('0', a.size() - zeros) != std::string::npos)
    return false;
  return digits_mod(a.substr(0, a.size() - zeros), m) == 0;
}

// The independent check: is `v` an instance of schema `s` (the subset above), with `root` for
// $ref? Written from JSON Schema's definitions, walking the parsed value.
inline bool valid(const json& v, const json& s, const json& root) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];
    return valid(v, root.at(json::json_pointer(ref.substr(1))), root);
  }
  if (s.contains("anyOf")) {
    for (const json& b : s["anyOf"])
      if (valid(v, b, root)) return true;
    return false;
  }
  if (s.contains("oneOf")) {
    int holds = 0;
    for (const json& b : s["oneOf"]) holds += valid(v, b, root);
    return holds == 1;
  }
  if (s.contains("allOf")) {
    for (const json& b : s["allOf"])
      if (!valid(v, b, root)) return false;
  }
  if (v.is_string()) {  // length in code points: the bytes that do not continue a character
    size_t n = 0;
    for (unsigned char c : v.get<std::string>()) n += (c & 0xc0) != 0x80;
    if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return false;
    if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return false;
    if (s.contains("format") && !format_ok(s["format"], v.get<std::string>())) return false;
    if (s.contains("pattern") && !pattern_ok(s["pattern"], v.get<std::string>())) return false;
  }
  if (v.is_number()) {
    const double x = v.get<double>();
    if (s.contains("minimum") && x < s["minimum"].get<double>()) return false;
    if (s.contains("maximum") && x > s["maximum"].get<double>()) return false;
    if (s.contains("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>()) return false;
    if (s.contains("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>()) return false;
    if (s.contains("multipleOf") && !multiple_ok(v, s["multipleOf"])) return false;
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return false;
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return false;
    if (s.value("uniqueItems", false))
      for (size_t i = 0; i < v.size(); ++i)
        for (size_t j = 0; j < i; ++j)
          if (v[i] == v[j]) return false;
  }
  if (s.contains("const") && v != s["const"]) return false;
  if (s.contains("enum")) {
    bool found = false;
    for (const json& e : s["enum"]) found = found || (v == e && v.type() == e.type());
    if (!found) return false;
  }
  if (s.contains("type")) {
    const json types = s["type"].is_array() ? s["type"] : json::array({s["type"]});
    bool ok = false;
    for (const json& t : types) {
      const std::string n = t;
      ok = ok || (n == "null" && v.is_null()) || (n == "boolean" && v.is_boolean()) ||
           (n == "integer" && v.is_number_integer()) || (n == "number" && v.is_number()) ||
           (n == "string" && v.is_string()) || (n == "array" && v.is_array()) ||
           (n == "object" && v.is_object());
    }
    if (!ok) return false;
  }
  if (v.is_array()) {
    // Tuples: prefixItems then items (2020-12), or an items array then additionalItems (draft 7).
    const bool draft7 = s.contains("items") && s["items"].is_array();
    const json none;
    const json& prefix = s.contains("prefixItems") ? s["prefixItems"] : draft7 ? s["items"] : none;
    const char* rest = draft7 ? "additionalItems" : "items";
    for (size_t i = 0; i < v.size(); ++i) {
      if (prefix.is_array() && i < prefix.size()) {
        if (!valid(v[i], prefix[i], root)) return false;
      } else if (s.contains(rest) && !valid(v[i], s[rest], root)) {
        return false;
      }
    }
  }
  if (v.is_object()) {
    if (s.contains("minProperties") && v.size() < s["minProperties"].get<size_t>()) return false;
    if (s.contains("maxProperties") && v.size() > s["maxProperties"].get<size_t>()) return false;
    if (s.contains("required"))
      for (const json& r : s["required"])
        if (!v.contains(r.get<std::string>())) return false;
    for (const auto& [k, e] : v.items()) {
      if (s.contains("properties") && s["properties"].contains(k)) {
        if (!valid(e, s["properties"][k], root)) return false;
      } else if (s.contains("additionalProperties")) {
        if (!valid(e, s["additionalProperties"], root)) return false;
      }
    }
  }
  return true;
}

// A random instance of schema `s` (the subset above), `depth` levels of recursion left.
inline json instance(std::mt19937& rng, const json& s, const json& root, int depth) {
  if (s.contains("$ref"))
    return instance(rng, root.at(json::json_pointer(s["$ref"].get<std::string>().substr(1))), root,
                    depth - 1);
  if (s.contains("anyOf") || s.contains("oneOf")) {
    const json& branches = s.contains("anyOf") ? s["anyOf"] : s["oneOf"];
    return instance(rng, branches[depth <= 0 ? branches.size() - 1 : rng() % branches.size()], root,
                    depth);
  }
  if (s.contains("allOf")) return instance(rng, s["allOf"][0], root, depth);
  if (s.contains("const")) return s["const"];
  if (s.contains("enum")) return s["enum"][rng() % s["enum"].size()];
  const json types = s["type"].is_array() ? s["type"] : json::array({s["type"]});
  const std::string t = types[rng() % types.size()];
  if (t == "null") return nullptr;
  if (t == "boolean") return rng() % 2 == 0;
  if ((t == "integer" || t == "number") && s.contains("multipleOf")) {
    // A multiple of the step, written from its decimal digits, within the bounds.
    std::string b;
    long q = 0;
    decimal_parts(s["multipleOf"].dump(), &b, &q);
    for (int tries = 0; tries < 1000; ++tries) {
      const long i = static_cast<long>(rng() % 401) - 200;
      std::string digits = std::to_string(std::abs(i) * std::stol(b));
      if (q > 0) digits.append(static_cast<size_t>(q), '0');
      if (q < 0) {
        digits.insert(0, std::max<long>(0, 1 - q - static_cast<long>(digits.size())), '0');
        digits.insert(digits.size() - static_cast<size_t>(-q), ".");
        digits.erase(digits.find_last_not_of('0') + 1);
        if (digits.back() == '.') digits.pop_back();
      }
      const json x = json::parse((i < 0 ? "-" : "") + digits);
      if (valid(x, s, root) && (t == "number" || x.is_number_integer())) return x;
    }
    throw std::logic_error("instance(): no multiple found for " + s.dump());
  }
  if (t == "integer") {
    int64_t lo = -1000, hi = 1000;
    if (s.contains("minimum")) lo = static_cast<int64_t>(std::ceil(s["minimum"].get<double>()));
    if (s.contains("exclusiveMinimum"))
      lo = static_cast<int64_t>(std::floor(s["exclusiveMinimum"].get<double>())) + 1;
    if (s.contains("maximum")) hi = static_cast<int64_t>(std::floor(s["maximum"].get<double>()));
    if (s.contains("exclusiveMaximum"))
      hi = static_cast<int64_t>(std::ceil(s["exclusiveMaximum"].get<double>())) - 1;
    if (hi - lo > 2000) lo = std::max(lo, hi - 2000), hi = std::min(hi, lo + 2000);
    return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
  }
  if (t == "number") {  // a multiple of 1/64 (exact in a double and in decimal) within the bounds
    for (int tries = 0; tries < 1000; ++tries) {
      const json x = (static_cast<double>(rng() % 20001) - 10000.0) / 64.0;
      if (valid(x, s, root)) return x;
    }
    throw std::logic_error("instance(): no multiple of 1/64 in [-156.25, 156.25] fits " + s.dump());
  }
  if (t == "string" && s.contains("format")) {
    const char* values[][3] = {
        {"date", "2024-02-29", "1999-12-31"},
        {"time", "23:59:59Z", "08:30:00.25+05:30"},
        {"date-time", "2026-12-06T04:05:06Z", "2000-01-01T00:00:00.5-08:00"},
        {"uuid", "123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-00000000ABCD"}};
    for (const auto& v : values)
      if (s["format"] == v[0]) return v[1 + rng() % 2];
    const char* more[][3] = {{"email", "ann.lee@example.org", "x+y@a-b.io"},
                             {"hostname", "example.org", "a1-b2"},
                             {"ipv4", "192.168.0.1", "0.0.0.0"},
                             {"ipv6", "::1", "2001:db8::ffff:1.2.3.4"},
                             {"duration", "P3Y6M4DT12H30M5S", "PT20M"},
                             {"uri", "https://example.org/a?b=1", "urn:isbn:0451450523"},
                             {"uri-reference", "../a/b", "https://h.io/"}};
    for (const auto& v : more)
      if (s["format"] == v[0]) return v[1 + rng() % 2];
  }
  if (t == "string") {
    const char* pool[] = {"",
                          "a",
                          "Lily",
                          "caf\xc3\xa9",
                          "say \"hi\"",
                          "line\nbreak",
                          "\xf0\x9f\x98\x80",
                          "AB-1234",
                          "x@y.io",
                          "-12.50"};
    std::vector<std::string> fits;  // the pool's strings within the length bounds
    for (const char* p : pool)
      if (valid(json(p), s, root)) fits.emplace_back(p);
    if (fits.empty()) return std::string(s.value("minLength", size_t{0}), 'x');
    return fits[rng() % fits.size()];
  }
  if (t == "array") {
    json a = json::array();
    const bool draft7 = s.contains("items") && s["items"].is_array();
    const json prefix = s.contains("prefixItems") ? s["prefixItems"]
                        : draft7                  ? s["items"]
                                                  : json::array();
    const json rest =
        s.value(draft7 ? "additionalItems" : "items", json::object({{"type", "string"}}));
    const size_t min_items = s.value("minItems", size_t{0});
    size_t max_items = std::min(s.value("maxItems", size_t{1000}), min_items + 2);
    if (rest == json(false)) max_items = std::min(max_items, prefix.size());
    const bool unique = s.value("uniqueItems", false);
    for (size_t i = 0, n = min_items + rng() % (max_items - min_items + 1), tries = 0;
         i < n && tries < 1000; ++tries) {
      const json e = instance(rng, i < prefix.size() ? prefix[i] : rest, root, depth);
      if (unique && std::find(a.begin(), a.end(), e) != a.end()) continue;  // draw again
      a.push_back(e);
      ++i;
    }
    return a;
  }
  json o = json::object();
  const json props = s.value("properties", json::object());
  const json required = s.value("required", json::array());
  for (const auto& [k, sub] : props.items()) {
    const bool req = std::find(required.begin(), required.end(), k) != required.end();
    if (req || rng() % 2 == 0) o[k] = instance(rng, sub, root, depth);
  }
  if (s.contains("additionalProperties") && s["additionalProperties"].is_object() && rng() % 2)
    o["weight"] = instance(rng, s["additionalProperties"], root, depth);
  // minProperties / maxProperties: drop optional properties, add missing ones.
  const auto required_name = [&](const std::string& k) {
    return std::find(required.begin(), required.end(), k) != required.end();
  };
  for (auto it = o.begin(); it != o.end() && o.size() > s.value("maxProperties", size_t{1000});)
    it = required_name(it.key()) ? std::next(it) : o.erase(it);
  for (auto it = props.begin(); it != props.end() && o.size() < s.value("minProperties", size_t{0});
       ++it)
    if (!o.contains(it.key())) o[it.key()] = instance(rng, it.value(), root, depth);
  return o;
}

}  // namespace xtile::server::test
