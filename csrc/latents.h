/* latents.h: what latents.c and latents_avx2.c share with dense_stack.c. Not part of the API.
 * The stream itself ("ganpack-philox/1"): ganpack_kernel.h and docs/latents.md.
 */
#ifndef GANPACK_LATENTS_H
#define GANPACK_LATENTS_H

#include "ganpack_kernel.h"

#include <stdint.h>

/* The float32 latents of rows [first_row, first_row + rows) of stream `seed` (see
   ganpack_kernel.h); every path gives the same bits. The AVX2 path serves AVX-512 stacks too,
   and is built only where gp_isa.h defines GP_HAVE_X86. */
void gp_latents_portable(uint64_t seed, int64_t first_row, int rows, int dim, int distribution,
                         float scale, float offset, float *z /* (rows, dim) */);
void gp_latents_avx2(uint64_t seed, int64_t first_row, int rows, int dim, int distribution,
                     float scale, float offset, float *z /* (rows, dim) */);
/* The path of a stack of `isa`: AVX2 where gp_isa_has_avx2, else portable. */
void gp_latents_isa(int isa, uint64_t seed, int64_t first_row, int rows, int dim,
                    int distribution, float scale, float offset, float *z /* (rows, dim) */);
/* The checks gp_latents and gp_stack_sample share: rows [first_row, first_row + rows) within
   [0, 2^63) (GP_ERR_SHAPE), a known distribution, a finite scale and offset (GP_ERR_ARGUMENT). */
gp_status gp_check_latent_args(int64_t first_row, int rows, int distribution, float scale,
                               float offset);

/* Philox4x32-10 and the float32 constants of the latent transform, shared by every path
   (runtime/ganpack/latents.py holds the same values). */
#define GP_PHILOX_M0 0xD2511F53u
#define GP_PHILOX_M1 0xCD9E8D57u
#define GP_PHILOX_W0 0x9E3779B9u
#define GP_PHILOX_W1 0xBB67AE85u
#define GP_LAT_TWO_M24 0x1p-24f
#define GP_LAT_SQRT2 0x1.6a09e6p+0f
#define GP_LAT_LN2 0x1.62e430p-1f
#define GP_LAT_ATANH9 0x1.c71c72p-4f /* 1/9 */
#define GP_LAT_ATANH7 0x1.24924ap-3f /* 1/7 */
#define GP_LAT_ATANH5 0x1.99999ap-3f /* 1/5 */
#define GP_LAT_ATANH3 0x1.555556p-2f /* 1/3 */
#define GP_LAT_SIN9 0x1.507834p-13f  /* (pi/2)^9 / 9! */
#define GP_LAT_SIN7 (-0x1.32d2ccp-8f)
#define GP_LAT_SIN5 0x1.466bc6p-4f
#define GP_LAT_SIN3 (-0x1.4abbcep-1f)
#define GP_LAT_SIN1 0x1.921fb6p+0f   /* pi/2 */
#define GP_LAT_COS10 (-0x1.a6d1f2p-16f) /* -(pi/2)^10 / 10! */
#define GP_LAT_COS8 0x1.e1f506p-11f
#define GP_LAT_COS6 (-0x1.55d3c8p-6f)
#define GP_LAT_COS4 0x1.03c1f0p-2f
#define GP_LAT_COS2 (-0x1.3bd3ccp+0f)

#endif /* GANPACK_LATENTS_H */
