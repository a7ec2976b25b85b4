// Errors: every failure a user can cause (bad file, bad flag, missing tier) is an xtile::Error
// whose message names the problem; the CLI prints it and exits non-zero. Programming errors
// inside kernels (a tensor packed for another layout) are Errors too: they must never read garbage.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "base/float_contract.h"

namespace xtile {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  ~Error() override;  // out of line (error.cpp): one copy, compiled for the baseline ISA
};

namespace detail {
template <typename... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}
}  // namespace detail

// fail("tensor '", name, "' has ", n, " dims"): throws xtile::Error with the concatenation.
template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(detail::concat(std::forward<Parts>(parts)...));
}

}  // namespace xtile
