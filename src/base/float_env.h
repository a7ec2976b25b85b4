// The thread's floating-point environment (MXCSR) as the contract needs it (DESIGN.md §3):
// round to nearest even, denormals neither flushed to zero on output (FTZ) nor read as zero on
// input (DAZ), exceptions masked (NaN and inf are values with defined results, not traps).
// MXCSR belongs to each thread, and a new thread inherits its creator's: a host program, or a
// library built with -ffast-math (crtfastmath.o sets FTZ and DAZ when it is loaded), may have
// changed it. xtile does not trust it: the entry points that compute (Session::eval, every
// ThreadPool job on every thread) set the contract's bits for their duration and give the
// caller its own MXCSR back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/float_contract.h"

namespace xtile {

inline constexpr uint32_t kMxcsrDaz = 1u << 6;                // denormal inputs read as zero
inline constexpr uint32_t kMxcsrExceptionMasks = 0x3fu << 7;  // IM DM ZM OM UM PM
inline constexpr uint32_t kMxcsrRounding = 3u << 13;          // 0: to nearest even
inline constexpr uint32_t kMxcsrFtz = 1u << 15;               // denormal results become zero

uint32_t read_mxcsr();
void write_mxcsr(uint32_t mxcsr);

// `mxcsr` with the contract's control bits (the sticky exception flags kept).
constexpr uint32_t contract_mxcsr(uint32_t mxcsr) {
  return (mxcsr & ~(kMxcsrDaz | kMxcsrRounding | kMxcsrFtz)) | kMxcsrExceptionMasks;
}

// "" when `mxcsr` follows the contract, else what does not, e.g. "FTZ (flush to zero) is set,
// rounding is toward zero".
std::string float_env_problem(uint32_t mxcsr);

// Throws xtile::Error "<where>: the floating-point environment (MXCSR 0x...) breaks the float
// contract: <problem>" when the calling thread's MXCSR does not follow the contract.
void check_float_env(std::string_view where);

// For its lifetime, the calling thread runs with contract_mxcsr(); the destructor restores the
// MXCSR found at construction (flags included, so the caller does not see xtile's flags).
// Costs one STMXCSR, plus two LDMXCSR only when the caller's MXCSR differed.
class ContractFloatEnv {
 public:
  ContractFloatEnv() : saved_(read_mxcsr()) {
    if (saved_ != contract_mxcsr(saved_)) write_mxcsr(contract_mxcsr(saved_));
  }
  ~ContractFloatEnv() {
    if (read_mxcsr() != saved_) write_mxcsr(saved_);
  }
  ContractFloatEnv(const ContractFloatEnv&) = delete;
  ContractFloatEnv& operator=(const ContractFloatEnv&) = delete;

 private:
  uint32_t saved_;
};

}  // namespace xtile
