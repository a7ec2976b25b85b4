#include "server/json_format.h"

#include <utility>

namespace xtile::server {

namespace {
namespace json_format {  // unity batches: CMakeLists.txt

bool is_digit(uint8_t c) {
  return c >= '0' && c <= '9';
}

bool is_hex(uint8_t c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int days_in_month(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// The second digit of a two-digit field in 00..max (first digit `tens`), or of a day in 01..max.
bool field_digit(uint8_t c, int tens, int lo, int max) {
  if (!is_digit(c)) return false;
  const int v = tens * 10 + (c - '0');
  return v >= lo && v <= max;
}

}  // namespace json_format
}  // namespace

const char* format_pattern(std::string_view name) {
#define XTILE_OCTET "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
#define XTILE_IPV4 XTILE_OCTET "(?:\\." XTILE_OCTET "){3}"
#define XTILE_H16 "[0-9a-fA-F]{1,4}"
#define XTILE_LS32 "(?:" XTILE_H16 ":" XTILE_H16 "|" XTILE_IPV4 ")"
#define XTILE_LABEL "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#define XTILE_HOST XTILE_LABEL "(?:\\." XTILE_LABEL ")*"
#define XTILE_ATEXT "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
#define XTILE_DUR_TIME "T(?:\\d+H(?:\\d+M(?:\\d+S)?)?|\\d+M(?:\\d+S)?|\\d+S)"
// One alternative per line, as RFC 4291 and RFC 3986 write them.
// clang-format off
#define XTILE_IPV6                                                                   \
  "(?:(?:" XTILE_H16 ":){6}" XTILE_LS32                                              \
  "|::(?:" XTILE_H16 ":){5}" XTILE_LS32                                              \
  "|(?:" XTILE_H16 ")?::(?:" XTILE_H16 ":){4}" XTILE_LS32                            \
  "|(?:(?:" XTILE_H16 ":){0,1}" XTILE_H16 ")?::(?:" XTILE_H16 ":){3}" XTILE_LS32     \
  "|(?:(?:" XTILE_H16 ":){0,2}" XTILE_H16 ")?::(?:" XTILE_H16 ":){2}" XTILE_LS32     \
  "|(?:(?:" XTILE_H16 ":){0,3}" XTILE_H16 ")?::" XTILE_H16 ":" XTILE_LS32            \
  "|(?:(?:" XTILE_H16 ":){0,4}" XTILE_H16 ")?::" XTILE_LS32                          \
  "|(?:(?:" XTILE_H16 ":){0,5}" XTILE_H16 ")?::" XTILE_H16                           \
  "|(?:(?:" XTILE_H16 ":){0,6}" XTILE_H16 ")?::)"
// RFC 3986: unreserved and sub-delims (with more characters inside the class's brackets), a
// percent-encoded octet, a path character.
#define XTILE_URI_CHARS(more) "[A-Za-z0-9._~!$&'()*+,;=" more "-]"
#define XTILE_PCT "%[0-9A-Fa-f]{2}"
#define XTILE_PCHAR "(?:" XTILE_URI_CHARS(":@") "|" XTILE_PCT ")"
// [ userinfo "@" ] host [ ":" port ]; the host an IP literal or a registered name (which an
// IPv4 address also is, as RFC 3986's grammar reads it).
#define XTILE_AUTHORITY                                                              \
  "(?:(?:" XTILE_URI_CHARS(":") "|" XTILE_PCT ")*@)?"                                \
  "(?:\\[(?:" XTILE_IPV6 "|v[0-9A-Fa-f]+\\." XTILE_URI_CHARS(":") "+)\\]"            \
  "|(?:" XTILE_URI_CHARS("") "|" XTILE_PCT ")*)"                                     \
  "(?::[0-9]*)?"
// hier-part's four forms: "//" authority path-abempty, path-absolute, path-rootless, empty.
#define XTILE_HIER_PART                                                              \
  "(?://" XTILE_AUTHORITY "(?:/" XTILE_PCHAR "*)*"                                   \
  "|/(?:" XTILE_PCHAR "+(?:/" XTILE_PCHAR "*)*)?"                                    \
  "|" XTILE_PCHAR "+(?:/" XTILE_PCHAR "*)*)?"
// relative-part: as hier-part, its rootless path's first segment without a ':' (path-noscheme).
#define XTILE_RELATIVE_PART                                                          \
  "(?://" XTILE_AUTHORITY "(?:/" XTILE_PCHAR "*)*"                                   \
  "|/(?:" XTILE_PCHAR "+(?:/" XTILE_PCHAR "*)*)?"                                    \
  "|(?:" XTILE_URI_CHARS("@") "|" XTILE_PCT ")+(?:/" XTILE_PCHAR "*)*)?"
#define XTILE_QUERY_FRAGMENT "(?:\\?(?:" XTILE_PCHAR "|[/?])*)?(?:#(?:" XTILE_PCHAR "|[/?])*)?"
// clang-format on
#define XTILE_SCHEME "[A-Za-z][A-Za-z0-9+.-]*"
  static constexpr std::pair<std::string_view, const char*> kPatterns[] = {
      {"ipv4", "^" XTILE_IPV4 "$"},
      {"ipv6", "^" XTILE_IPV6 "$"},
      {"hostname", "^" XTILE_HOST "$"},
      {"email", "^" XTILE_ATEXT "+(?:\\." XTILE_ATEXT "+)*@" XTILE_HOST "$"},
      {"duration", "^P(?:(?:\\d+D|\\d+M(?:\\d+D)?|\\d+Y(?:\\d+M(?:\\d+D)?)?)(?:" XTILE_DUR_TIME
                   ")?|" XTILE_DUR_TIME "|\\d+W)$"},
      {"uri", "^" XTILE_SCHEME ":" XTILE_HIER_PART XTILE_QUERY_FRAGMENT "$"},
      {"uri-reference", "^(?:" XTILE_SCHEME ":" XTILE_HIER_PART "|" XTILE_RELATIVE_PART
                        ")" XTILE_QUERY_FRAGMENT "$"},
  };
#undef XTILE_OCTET
#undef XTILE_IPV4
#undef XTILE_H16
#undef XTILE_LS32
#undef XTILE_LABEL
#undef XTILE_HOST
#undef XTILE_ATEXT
#undef XTILE_DUR_TIME
#undef XTILE_IPV6
#undef XTILE_URI_CHARS
#undef XTILE_PCT
#undef XTILE_PCHAR
#undef XTILE_AUTHORITY
#undef XTILE_HIER_PART
#undef XTILE_RELATIVE_PART
#undef XTILE_QUERY_FRAGMENT
#undef XTILE_SCHEME
  for (const auto& [n, pattern] : kPatterns)
    if (n == name) return pattern;
  return nullptr;
}

StringFormat string_format(std::string_view name) {
  if (name == "date") return StringFormat::kDate;
  if (name == "time") return StringFormat::kTime;
  if (name == "date-time") return StringFormat::kDateTime;
  if (name == "uuid") return StringFormat::kUuid;
  return StringFormat::kNone;
}

FormatReader::FormatReader(StringFormat format) : format_(format) {
  switch (format) {
    case StringFormat::kTime:
      part_ = Part::kTime;
      break;
    case StringFormat::kUuid:
      part_ = Part::kUuid;
      break;
    default:
      part_ = Part::kDate;
  }
}

bool FormatReader::complete() const {
  return part_ == Part::kDone;
}

void FormatReader::date_done() {
  pos_ = 0;
  part_ = format_ == StringFormat::kDateTime ? Part::kT : Part::kDone;
}

// YYYY-MM-DD: any year 0000-9999, month 01-12, day 01 to the month's last.
bool FormatReader::date_byte(uint8_t c) {
  using namespace json_format;  // this file's helpers
  const uint8_t at = pos_++;
  if (at == 4 || at == 7) return c == '-';
  if (!is_digit(c)) return false;
  const int d = c - '0';
  if (at < 4) {
    year_ = static_cast<uint16_t>(year_ * 10 + d);
    return true;
  }
  if (at == 5 || at == 8) {  // a field's first digit: some second digit must fit
    tens_ = static_cast<uint8_t>(d);
    const int max = at == 5 ? 12 : days_in_month(year_, month_);
    return d * 10 <= max;
  }
  if (at == 6) {
    if (!field_digit(c, tens_, 1, 12)) return false;
    month_ = static_cast<uint8_t>(tens_ * 10 + d);
    return true;
  }
  if (!field_digit(c, tens_, 1, days_in_month(year_, month_))) return false;  // at == 9
  date_done();
  return true;
}

// hh:mm:ss (hours 00-23, minutes and seconds 00-59), or an offset's hh:mm.
bool FormatReader::time_byte(uint8_t c, bool offset) {
  using namespace json_format;  // this file's helpers
  const uint8_t at = pos_++;
  if (at == 2 || at == 5) return c == ':';
  if (!is_digit(c)) return false;
  const int d = c - '0';
  if (at == 0) {
    tens_ = static_cast<uint8_t>(d);
    return d <= 2;
  }
  if (at == 1) {
    if (!field_digit(c, tens_, 0, 23)) return false;
  } else if (at == 3 || at == 6) {
    tens_ = static_cast<uint8_t>(d);
    return d <= 5;
  }
  const bool last = offset ? at == 4 : at == 7;
  if (last) {
    pos_ = 0;
    part_ = offset ? Part::kDone : Part::kFraction;
  }
  return true;
}

bool FormatReader::step(uint8_t c) {
  using namespace json_format;  // this file's helpers
  switch (part_) {
    case Part::kDate:
      return date_byte(c);
    case Part::kT:
      if (c != 'T') return false;
      part_ = Part::kTime;
      return true;
    case Part::kTime:
      return time_byte(c, false);
    case Part::kFraction:  // right after the seconds: '.', or the zone
      if (pos_ == 0 && c == '.') {
        pos_ = 1;
        return true;
      }
      if (pos_ > 0 && is_digit(c)) return ++pos_ <= 10;  // up to 9 digits
      if (pos_ == 1) return false;                       // a '.' needs a digit
      part_ = Part::kZone;
      [[fallthrough]];
    case Part::kZone:
      if (c == 'Z') {
        part_ = Part::kDone;
        return true;
      }
      if (c != '+' && c != '-') return false;
      pos_ = 0;
      part_ = Part::kOffset;
      return true;
    case Part::kOffset:
      return time_byte(c, true);
    case Part::kUuid: {
      const uint8_t at = pos_++;
      if (at == 8 || at == 13 || at == 18 || at == 23) return c == '-';
      if (!is_hex(c)) return false;
      if (at == 35) part_ = Part::kDone;
      return true;
    }
    case Part::kDone:
      return false;
  }
  return false;
}

}  // namespace xtile::server
