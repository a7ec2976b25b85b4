// Portable (baseline x86-64): decides whether f16c_convert.cpp's code may run on this CPU, from
// the ISA extensions it was compiled for, so a change of its compiler flags cannot turn into a
// SIGILL on a CPU that has F16C but not the new extension.
#include "kernels/avx2/f16c_convert.h"

namespace xtile::avx2 {

bool f16c_convert_usable(const CpuCaps& caps) {
  const F16cObjectIsa& need = kF16cObjectIsa;
  // Every VEX-encoded instruction needs the OS to save the AVX state (XCR0).
  if (!caps.os_avx) return false;
  if (need.avx && !caps.avx) return false;
  if (need.f16c && !caps.f16c) return false;
  if (need.avx2 && !caps.avx2) return false;
  if (need.fma && !caps.fma) return false;
  if (need.avx512f && !(caps.avx512f && caps.os_avx512)) return false;
  return true;
}

}  // namespace xtile::avx2
