/* simde_avx512.h: the AVX-512F intrinsics of dense_stack_avx512.c on a CPU without AVX-512, for
 * `make test-avx512-emulated` only (compiled with -DGP_AVX512_SIMDE, never into the library or
 * the wheel).
 *
 * SIMDe (SIMD Everywhere, Debian's libsimde-dev) implements each AVX-512 intrinsic in portable C
 * over narrower vectors; with SIMDE_ENABLE_NATIVE_ALIASES the file's _mm512_* names and __m512
 * types are SIMDe's. That build compiles dense_stack_avx512.c with -mavx2 -mfma, so SIMDe runs
 * every 16-lane operation as two native AVX2 ones: _mm512_fmadd_ps is then a real fused
 * multiply-add, as on AVX-512 hardware (SIMDe's baseline fallback would be a multiply and an add,
 * rounded twice: another arithmetic than the path's). No AVX-512 instruction is emitted (the
 * Makefile's objdump check fails the build on any zmm or opmask register).
 *
 * Below: what SIMDe 0.7.4 lacks, and aligned loads that fault where AVX-512 would.
 */
#ifndef GANPACK_TESTS_SIMDE_AVX512_H
#define GANPACK_TESTS_SIMDE_AVX512_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <stdint.h>

/* GCC's own name for a 16-lane opmask; SIMDe aliases its vector types but not this one. */
typedef simde__mmask16 __mmask16;

/* vcvtps2dq: float -> int32 in the current rounding mode (MXCSR, round half to even by default),
   on each 8-lane half as SIMDe's (native) _mm256_cvtps_epi32. */
static inline simde__m512i gp_simde_mm512_cvtps_epi32(simde__m512 a) {
    simde__m512_private a_ = simde__m512_to_private(a);
    simde__m512i_private r_;
    for (int half = 0; half < 2; half++) r_.m256i[half] = simde_mm256_cvtps_epi32(a_.m256[half]);
    return simde__m512i_from_private(r_);
}
#define _mm512_cvtps_epi32(a) gp_simde_mm512_cvtps_epi32(a)

/* vpmovdb with an opmask: the low byte of each int32 lane (truncation, not saturation), only the
   lanes of mask written: the bytes of the others are never touched, as on the hardware. */
static inline void gp_simde_mm512_mask_cvtepi32_storeu_epi8(void *dst /* (16) bytes */, __mmask16 mask,
                                                            simde__m512i a) {
    const simde__m512i_private a_ = simde__m512i_to_private(a);
    unsigned char *bytes = (unsigned char *)dst;
    for (int lane = 0; lane < 16; lane++) {
        if ((mask >> lane) & 1u) bytes[lane] = (unsigned char)((uint32_t)a_.i32[lane] & 0xFFu);
    }
}
#define _mm512_mask_cvtepi32_storeu_epi8(dst, mask, a) gp_simde_mm512_mask_cvtepi32_storeu_epi8(dst, mask, a)

/* vmovups with an opmask: only the lanes of mask are written. */
static inline void gp_simde_mm512_mask_storeu_ps(void *dst /* (16) floats */, __mmask16 mask, simde__m512 a) {
    const simde__m512_private a_ = simde__m512_to_private(a);
    float *floats = (float *)dst;
    for (int lane = 0; lane < 16; lane++) {
        if ((mask >> lane) & 1u) floats[lane] = a_.f32[lane];
    }
}
#define _mm512_mask_storeu_ps(dst, mask, a) gp_simde_mm512_mask_storeu_ps(dst, mask, a)

/* vmovaps / vmovdqa32 fault (#GP) on an address that is not 64-byte aligned; SIMDe's loads copy
   from anywhere. Trap as the hardware would, so that a misaligned panel or bias row fails here
   instead of only on an AVX-512 machine. */
static inline void gp_simde_check_aligned(const void *address) {
    if (((uintptr_t)address & 63u) != 0) __builtin_trap();
}
static inline simde__m512 gp_simde_mm512_load_ps(const void *address) {
    gp_simde_check_aligned(address);
    return simde_mm512_load_ps(address);
}
static inline simde__m512i gp_simde_mm512_load_si512(const void *address) {
    gp_simde_check_aligned(address);
    return simde_mm512_load_si512(address);
}
#undef _mm512_load_ps
#define _mm512_load_ps(address) gp_simde_mm512_load_ps(address)
#undef _mm512_load_si512
#define _mm512_load_si512(address) gp_simde_mm512_load_si512(address)

#endif /* GANPACK_TESTS_SIMDE_AVX512_H */
