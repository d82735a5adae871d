/* latents.c: the latent stream "ganpack-philox/1" (see ganpack_kernel.h), plain C path, the
 * public gp_latents and the choice of path. runtime/ganpack/latents.py is the reference: every
 * float32 operation below is the one it does, in the same order, never fused (the build passes
 * -ffp-contract=off), so C and numpy give the same bits.
 *
 * Per block of a row: Philox4x32-10 of counter (block, row lo, row hi, 0) under key (seed lo,
 * seed hi) gives words w0..w3. normal: (w0, w1) and (w2, w3) are Box-Muller pairs; uniform:
 * each word is (w >> 8) 2^-24. Value j of a row is word j / blocks of block j % blocks.
 */
#include "gp_isa.h"
#include "latents.h"

#include <math.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* gcc: -std=c11 and -ffp-contract=off already say so */
#endif

static float unit(uint32_t word) { /* [0, 1), exact */
    return (float)(word >> 8) * GP_LAT_TWO_M24;
}

/* ---------------------------------------------------------------- LANES blocks at a time */

/* LANES blocks of a row at once, each step a loop over the lanes that the compiler vectorizes
   at the target's baseline (SSE2, Advanced SIMD), as in dense_stack_portable.c: every choice is
   a select between values already in arrays, or integer bit operations. sqrtf stays scalar (it
   may set errno, so it is not vectorized without -fno-math-errno). */
#define LANES 8

/* Philox4x32-10 of LANES counters (x0[l], x1[l], x2[l], x3[l]) under key (k0, k1), in place. */
static void philox_lanes(uint32_t x0[LANES], uint32_t x1[LANES], uint32_t x2[LANES],
                         uint32_t x3[LANES], uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += GP_PHILOX_W0;
            k1 += GP_PHILOX_W1;
        }
        for (int l = 0; l < LANES; l++) {
            const uint64_t p0 = (uint64_t)GP_PHILOX_M0 * x0[l];
            const uint64_t p1 = (uint64_t)GP_PHILOX_M1 * x2[l];
            const uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1[l] ^ k0;
            const uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3[l] ^ k1;
            x0[l] = y0;
            x1[l] = (uint32_t)p1;
            x2[l] = y2;
            x3[l] = (uint32_t)p0;
        }
    }
}

/* Box-Muller of LANES pairs of words: a[l] = r cos(2 pi v), b[l] = r sin(2 pi v), with
   r = sqrt(-2 log u), u = ((radius_word >> 8) + 1) 2^-24 in (0, 1], v = (angle_word >> 8) 2^-24.
   log u: u = m 2^e, m in [sqrt(2)/2, sqrt(2)), log m = 2 atanh((m - 1) / (m + 1)) by its odd
   series. cos and sin of 2 pi v: 4v = q + f, q = nearest (half to even: (t + 2^23) - 2^23 for t
   in [0, 4), exactly rintf in the default rounding mode), |f| <= 1/2, the quarter q picks and
   signs the polynomials of f. */
static void normal_lanes(const uint32_t radius_word[LANES], const uint32_t angle_word[LANES],
                         float a[LANES], float b[LANES]) {
    float u[LANES], m[LANES], half[LANES], log_u[LANES], radius[LANES];
    int32_t exponent[LANES];
    uint32_t bits[LANES];
    /* log u, u in (0, 1] */
    for (int l = 0; l < LANES; l++) u[l] = (float)((radius_word[l] >> 8) + 1u) * GP_LAT_TWO_M24;
    memcpy(bits, u, sizeof bits);
    for (int l = 0; l < LANES; l++) {
        exponent[l] = (int32_t)(bits[l] >> 23) - 127;
        bits[l] = (bits[l] & 0x7FFFFFu) | 0x3F800000u;
    }
    memcpy(m, bits, sizeof m);
    for (int l = 0; l < LANES; l++) half[l] = m[l] * 0.5f;
    for (int l = 0; l < LANES; l++) exponent[l] += m[l] > GP_LAT_SQRT2;
    for (int l = 0; l < LANES; l++) m[l] = m[l] > GP_LAT_SQRT2 ? half[l] : m[l];
    for (int l = 0; l < LANES; l++) {
        const float f = m[l] - 1.0f;
        const float s = f / (f + 2.0f);
        const float s2 = s * s;
        float p = GP_LAT_ATANH9;
        p = p * s2 + GP_LAT_ATANH7;
        p = p * s2 + GP_LAT_ATANH5;
        p = p * s2 + GP_LAT_ATANH3;
        p = p * s2 + 1.0f;
        log_u[l] = (float)exponent[l] * GP_LAT_LN2 + (s + s) * p;
    }
    for (int l = 0; l < LANES; l++) radius[l] = sqrtf(log_u[l] * -2.0f);
    /* cos and sin of 2 pi v */
    float sin_a[LANES], cos_a[LANES], c[LANES], s[LANES];
    int32_t quarter[LANES];
    for (int l = 0; l < LANES; l++) {
        const float t = (float)(angle_word[l] >> 8) * GP_LAT_TWO_M24 * 4.0f;
        const float q = (t + 0x1p23f) - 0x1p23f;
        const float f = t - q;
        const float f2 = f * f;
        float sp = GP_LAT_SIN9;
        sp = sp * f2 + GP_LAT_SIN7;
        sp = sp * f2 + GP_LAT_SIN5;
        sp = sp * f2 + GP_LAT_SIN3;
        sp = sp * f2 + GP_LAT_SIN1;
        sin_a[l] = f * sp;
        float cp = GP_LAT_COS10;
        cp = cp * f2 + GP_LAT_COS8;
        cp = cp * f2 + GP_LAT_COS6;
        cp = cp * f2 + GP_LAT_COS4;
        cp = cp * f2 + GP_LAT_COS2;
        cos_a[l] = cp * f2 + 1.0f;
        quarter[l] = (int32_t)q;
    }
    for (int l = 0; l < LANES; l++) c[l] = (quarter[l] & 1) ? sin_a[l] : cos_a[l];
    for (int l = 0; l < LANES; l++) s[l] = (quarter[l] & 1) ? cos_a[l] : sin_a[l];
    uint32_t c_bits[LANES], s_bits[LANES];
    memcpy(c_bits, c, sizeof c_bits);
    memcpy(s_bits, s, sizeof s_bits);
    for (int l = 0; l < LANES; l++) { /* negate: quarters 1 and 2 for cos, 2 and 3 for sin */
        c_bits[l] ^= (uint32_t)((quarter[l] + 1) & 2) << 30;
        s_bits[l] ^= (uint32_t)(quarter[l] & 2) << 30;
    }
    memcpy(c, c_bits, sizeof c);
    memcpy(s, s_bits, sizeof s);
    float ra[LANES], rb[LANES]; /* locals, so that no alias check stands in the way */
    for (int l = 0; l < LANES; l++) {
        ra[l] = radius[l] * c[l];
        rb[l] = radius[l] * s[l];
    }
    memcpy(a, ra, sizeof ra);
    memcpy(b, rb, sizeof rb);
}

/* ---------------------------------------------------------------- rows */

void gp_latents_portable(uint64_t seed, int64_t first_row, int rows, int dim, int distribution,
                         float scale, float offset, float *z /* (rows, dim) */) {
    const int blocks = (dim + 3) / 4;
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < rows; r++) {
        const uint64_t row = (uint64_t)first_row + (uint64_t)r;
        float *out = z + (size_t)r * (size_t)dim; /* (dim) */
        for (int first = 0; first < blocks; first += LANES) {
            const int n = blocks - first < LANES ? blocks - first : LANES;
            uint32_t x[4][LANES];
            for (int l = 0; l < LANES; l++) {
                x[0][l] = (uint32_t)(first + l);
                x[1][l] = (uint32_t)row;
                x[2][l] = (uint32_t)(row >> 32);
                x[3][l] = 0u;
            }
            philox_lanes(x[0], x[1], x[2], x[3], k0, k1);
            float value[4][LANES];
            if (distribution == GP_LATENT_NORMAL) {
                normal_lanes(x[0], x[1], value[0], value[1]);
                normal_lanes(x[2], x[3], value[2], value[3]);
            } else {
                for (int w = 0; w < 4; w++) {
                    for (int l = 0; l < LANES; l++) value[w][l] = unit(x[w][l]);
                }
            }
            /* word w of block b is value w * blocks + b: a contiguous run of n per word */
            for (int w = 0; w < 4; w++) {
                const int j0 = w * blocks + first;
                const int count = dim - j0 < n ? dim - j0 : n;
                if (count == LANES) { /* a fixed trip count: vector code on every target */
                    for (int l = 0; l < LANES; l++) out[j0 + l] = value[w][l] * scale + offset;
                } else {
                    for (int l = 0; l < count; l++) out[j0 + l] = value[w][l] * scale + offset;
                }
            }
        }
    }
}

void gp_latents_isa(int isa, uint64_t seed, int64_t first_row, int rows, int dim,
                    int distribution, float scale, float offset, float *z) {
#ifdef GP_HAVE_X86
    if (gp_isa_has_avx2(isa)) {
        gp_latents_avx2(seed, first_row, rows, dim, distribution, scale, offset, z);
        return;
    }
#endif
    (void)isa;
    gp_latents_portable(seed, first_row, rows, dim, distribution, scale, offset, z);
}

/* ---------------------------------------------------------------- the API */

gp_status gp_check_latent_args(int64_t first_row, int rows, int distribution, float scale,
                               float offset) {
    if (rows < 0 || first_row < 0 || first_row > INT64_MAX - rows) return GP_ERR_SHAPE;
    if (distribution != GP_LATENT_NORMAL && distribution != GP_LATENT_UNIFORM) {
        return GP_ERR_ARGUMENT;
    }
    /* written so that NaN fails too: x - x is 0 for every finite x, NaN for NaN and infinities */
    if (!(scale - scale == 0.0f) || !(offset - offset == 0.0f)) return GP_ERR_ARGUMENT;
    return GP_OK;
}

gp_status gp_latents(uint64_t seed, int64_t first_row, int rows, int dim, int distribution,
                     float scale, float offset, float *z) {
    if (dim < 1 || dim > (1 << 20)) return GP_ERR_SHAPE;
    const gp_status status = gp_check_latent_args(first_row, rows, distribution, scale, offset);
    if (status != GP_OK) return status;
    if (rows == 0) return GP_OK;
    if (z == NULL) return GP_ERR_NULL;
    gp_latents_isa(gp_best_isa(), seed, first_row, rows, dim, distribution, scale, offset, z);
    return GP_OK;
}
