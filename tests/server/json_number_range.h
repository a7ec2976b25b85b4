// The JSON tests' oracle for the grammars' range of numbers (src/server/json_number_magnitude.h:
// below 1e308 in magnitude), from the doubles nlohmann parses, apart from the grammar's digit
// by digit reading.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>

namespace xtile::server::test {

// Where a document's numbers lie against 1e308. A decimal a hair below 1e308 parses to the
// double nearest 1e308, which is 1e308's own: that double is kBoundary, where the grammar may go
// either way. nlohmann refuses a number beyond a double's range: the caller counts that as
// kBeyond.
enum class NumberRange { kBelow, kBoundary, kBeyond };

template <class Json>
NumberRange number_range(const Json& v) {
  if (v.is_number_float()) {
    const double m = std::fabs(v.template get<double>());
    return m < 1e308    ? NumberRange::kBelow
           : m == 1e308 ? NumberRange::kBoundary
                        : NumberRange::kBeyond;
  }
  NumberRange worst = NumberRange::kBelow;
  if (v.is_structured())
    for (const auto& e : v) {
      const NumberRange r = number_range(e);
      if (static_cast<int>(r) > static_cast<int>(worst)) worst = r;
    }
  return worst;
}

}  // namespace xtile::server::test
