// MXCSR access through the SSE intrinsics (baseline x86-64).
#include "base/float_env.h"

#include <xmmintrin.h>

#include <cstdio>

#include "base/error.h"

namespace xtile {

uint32_t read_mxcsr() {
  return _mm_getcsr();
}

void write_mxcsr(uint32_t mxcsr) {
  _mm_setcsr(mxcsr);
}

std::string float_env_problem(uint32_t mxcsr) {
  std::string out;
  auto add = [&out](const char* what) {
    if (!out.empty()) out += ", ";
    out += what;
  };
  if (mxcsr & kMxcsrFtz) add("FTZ (flush to zero) is set");
  if (mxcsr & kMxcsrDaz) add("DAZ (denormals are zero) is set");
  switch ((mxcsr & kMxcsrRounding) >> 13) {
    case 1:
      add("rounding is toward -inf");
      break;
    case 2:
      add("rounding is toward +inf");
      break;
    case 3:
      add("rounding is toward zero");
      break;
    default:
      break;
  }
  if ((mxcsr & kMxcsrExceptionMasks) != kMxcsrExceptionMasks)
    add("floating-point exceptions are unmasked");
  return out;
}

void check_float_env(std::string_view where) {
  const uint32_t mxcsr = read_mxcsr();
  const std::string problem = float_env_problem(mxcsr);
  if (problem.empty()) return;
  char hex[16];
  std::snprintf(hex, sizeof(hex), "0x%04x", mxcsr);
  fail(where, ": the floating-point environment (MXCSR ", hex,
       ") breaks the float contract: ", problem);
}

}  // namespace xtile
