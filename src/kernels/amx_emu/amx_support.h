// Portable helpers shared by both builds of the amx kernels (xtile::amx and xtile::amx_emu).
// Compiled once, in xtile_core with baseline flags, so that the error paths (std::string,
// ostringstream) are never instantiated inside the AMX translation unit: inline library code
// emitted there would carry AVX-512 encodings and the linker may keep that copy for everyone.
#pragma once

#include <cstdint>
#include <string_view>

#include "kernels/kernel_api.h"

namespace xtile::amx_support {

// Throws xtile::Error naming `kernel` when a call breaks the MatmulFn contract: wrong layout,
// K mismatch or not a multiple of 32, m range outside x, n range outside w or n0 not a multiple
// of 16.
void check_call(const PackedMatrix& w, Layout layout, const QuantizedActs& x, int64_t m0,
                int64_t m1, int64_t n0, int64_t n1, std::string_view kernel);

}  // namespace xtile::amx_support
