// Compile-time guards for the float contract (DESIGN.md §3.5): every tier computes the same bits
// only if the compiler evaluates float expressions exactly as written. The project's
// CMakeLists.txt sets the right flags, but a project that embeds xtile, a distribution's
// default flags or an -Ofast build would silently change results (fast-math reassociates sums,
// assumes no NaN/inf, flushes denormals through crtfastmath; x87 excess precision rounds twice).
// The build force-includes this header into every translation unit (CMakeLists.txt, checked by
// tests/float_contract_test.cpp), and the base headers, cpu_caps.h and ggml_types.h include it
// for other build systems, so such a build fails here, naming the flag, instead.
//
// Not detectable here: -ffp-contract=fast (no macro). The kernels' start-up self-check against
// ref (ops/tier_self_check.h) catches its effect on the quantized matmuls.
#pragma once

#include <cfloat>

#if defined(__FAST_MATH__)
#error "xtile: built with -ffast-math or -Ofast; the bit-exact contract needs IEEE float"
#endif
#if defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__
#error "xtile: built with -ffinite-math-only; the contract defines NaN and inf results"
#endif
#if defined(__ASSOCIATIVE_MATH__)
#error "xtile: built with -fassociative-math; sums must keep their written order"
#endif
#if defined(__RECIPROCAL_MATH__)
#error "xtile: built with -freciprocal-math; x / d must not become x * (1 / d)"
#endif
#if defined(__NO_SIGNED_ZEROS__)
#error "xtile: built with -fno-signed-zeros; -0.0 and +0.0 must stay distinct"
#endif
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "xtile: FLT_EVAL_METHOD != 0 (x87 excess precision: -mfpmath=387, -m32); use SSE math"
#endif
