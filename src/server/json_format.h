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
#include <string_view>

namespace xtile::server {

enum class StringFormat : uint8_t { kNone, kDate, kTime, kDateTime, kUuid };

// The format named `name`, or kNone when the grammar does not keep it.
StringFormat string_format(std::string_view name);

// Reads a formatted string's characters (between its quotes) one byte at a time.
class FormatReader {
 public:
  explicit FormatReader(StringFormat format = StringFormat::kNone);
  // Takes byte c, or returns false (the state then unusable: callers copy first).
  bool step(uint8_t c);
  // The characters so far are a whole value: the closing quote may come.
  bool complete() const;

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
