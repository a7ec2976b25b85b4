// JSON Schema's string formats the structured-output grammar keeps (json_prefix.h): the ones
// OpenAI's strict mode lists that are a fixed layout of digits, not a language of their own.
//   date       RFC 3339 full-date: YYYY-MM-DD, the day within its month (leap years counted)
//   time       RFC 3339 full-time: hh:mm:ss, an optional fraction (1 to 9 digits), then Z or
//              +hh:mm / -hh:mm (the offset is part of RFC 3339's time)
//   date-time  date "T" time
//   uuid       RFC 9562: 8-4-4-4-12 hex digits
// Decisions where RFC 3339 leaves a choice: the separators in capitals ("T", "Z"), seconds
// 00-59 (no leap second 60, which most validators and date libraries refuse). The characters
// are written as they are, never as \u escapes (one spelling, as for enum values).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/memo_key.h"

namespace xtile::server {

enum class StringFormat : uint8_t { kNone, kDate, kTime, kDateTime, kUuid };

// The format named `name`, or kNone when the grammar does not keep it.
StringFormat string_format(std::string_view name);

// The other formats of OpenAI's strict mode, kept as a `pattern` (json_pattern.h): the pattern
// for `name`, or nullptr. Each is its RFC's grammar written as an expression:
//   email     RFC 5322's dot-atom "@" a hostname (no quoted local parts, no address literals)
//   hostname  RFC 1123: labels of 1-63 letters, digits and '-', neither first nor last '-',
//             joined by '.' (the 253-character total is the schema's: a maxLength of 253)
//   ipv4      RFC 2673's dotted quad: four decimal octets 0-255 without leading zeros
//   ipv6      RFC 4291's text forms (RFC 3986's IPv6address: "::" once, an IPv4 tail)
//   duration  RFC 3339 appendix A: P with years, months, days, weeks, a T part of hours,
//             minutes, seconds, as JSON Schema's "duration" defines it
// and, beyond OpenAI's list, the two that Pydantic's URL types carry:
//   uri            RFC 3986's URI: a scheme, ':', the hierarchical part (an authority with
//                  userinfo, an IP literal or a registered name and a port, then a path; or a
//                  path alone), a query and a fragment; characters outside RFC 3986's sets
//                  percent-encoded (so no spaces and no raw non-ASCII: an IRI is not a URI)
//   uri-reference  a URI or RFC 3986's relative reference
const char* format_pattern(std::string_view name);

// Reads a formatted string's characters (between its quotes) one byte at a time.
class FormatReader {
 public:
  explicit FormatReader(StringFormat format = StringFormat::kNone);
  // Takes byte c, or returns false (the state then unusable: callers copy first).
  bool step(uint8_t c);
  // The characters so far are a whole value: the closing quote may come.
  bool complete() const;
  // The state's key for the mask's memo (grammar_memo.h).
  void memo_key(std::string* key) const {
    for (uint8_t b :
         {static_cast<uint8_t>(format_), static_cast<uint8_t>(part_), pos_, tens_, month_})
      put_key(key, b);
    put_key(key, year_);
  }

 private:
  enum class Part : uint8_t { kDate, kT, kTime, kFraction, kZone, kOffset, kUuid, kDone };
  bool date_byte(uint8_t c);
  bool time_byte(uint8_t c, bool offset);  // hh:mm:ss, or an offset's hh:mm
  void date_done();

  StringFormat format_;
  Part part_;
  uint8_t pos_ = 0;   // bytes read in the part
  uint8_t tens_ = 0;  // the two-digit field's first digit
  uint8_t month_ = 0;
  uint16_t year_ = 0;
};

}  // namespace xtile::server
