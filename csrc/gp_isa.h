/* gp_isa.h: which instruction-set paths this build has, and which one a CPU runs. Not part of
 * the API. The paths themselves: dense_stack_{portable,avx2,avx512}.c; the choice: dense_stack.c.
 */
#ifndef GANPACK_GP_ISA_H
#define GANPACK_GP_ISA_H

#include "ganpack_kernel.h"

/* The x86 SIMD paths need GCC/Clang function-level target attributes and <immintrin.h>.
   Elsewhere (ARM64, ...) and with -DGP_PORTABLE_ONLY (make test-portable) their files compile
   to nothing and the portable path is the only one. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(GP_PORTABLE_ONLY)
#define GP_HAVE_X86 1
#endif

/* The target attribute of the AVX-512 path's functions. Empty in the emulated test build
   (-DGP_AVX512_SIMDE, `make test-avx512-emulated`): there SIMDe supplies the intrinsics as AVX2
   code, and target("avx512f") would let the compiler emit real AVX-512 instructions. */
#ifdef GP_AVX512_SIMDE
#define GP_TARGET_AVX512
#else
#define GP_TARGET_AVX512 __attribute__((target("avx512f")))
#endif

/* 1 when this CPU (and this build) can run `isa` (a gp_isa other than GP_ISA_AUTO). */
int gp_isa_supported(int isa);

/* The path gp_best_isa picks on a CPU with these features (each 0 or 1), in this build: the rule
   alone, so that tests can ask what a CPU without AVX2 would get (the portable path). */
int gp_isa_for_features(int avx512f, int avx2, int fma);

/* 1 when a stack of `isa` may use the AVX2 helpers (latents, uint8 conversion, range checks):
   its own path is AVX2, or AVX-512, and every AVX-512 CPU has AVX2. */
static inline int gp_isa_has_avx2(int isa) {
#ifdef GP_HAVE_X86
    return isa == GP_ISA_AVX2_FMA || isa == GP_ISA_AVX512;
#else
    (void)isa;
    return 0;
#endif
}

#endif /* GANPACK_GP_ISA_H */
